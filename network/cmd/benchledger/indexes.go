package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inter-nmi/pki/network/internal/consortium"
)

// The indexes built from the peers' blocks: every registry's readings index
// and the explorer's. A figure of storage or memory is read once they have
// read every block the load made, so that their work and their bytes count
// for the load that caused them.

// registryIndexMetric is the block a registry's index reads next: every
// block before it is indexed.
const registryIndexMetric = "registry_index_next_block"

// stalled reports an index that has read no new block for a while.
type stalled struct {
	index    string
	at, want uint64
	since    time.Duration
}

func (e *stalled) Error() string {
	return fmt.Sprintf("%s has read %d of %d blocks and no new one for %s", e.index, e.at, e.want, e.since.Round(time.Second))
}

// awaitRegistryIndex waits until an NMI's registry's index has read height
// blocks. It asks the registry's metrics every poll, keeps asking while the
// registry does not answer (it may be starting), and gives up once the
// index has not moved for stall.
func awaitRegistryIndex(ctx context.Context, nw *consortium.Network, nmi string, height uint64, poll, stall time.Duration) error {
	var at uint64
	moved := time.Now()
	for {
		next, err := nw.RegistryMetric(ctx, nmi, registryIndexMetric)
		if err == nil {
			if uint64(next) >= height {
				return nil
			}
			if uint64(next) > at {
				at, moved = uint64(next), time.Now()
			}
		}
		if time.Since(moved) > stall {
			if err != nil {
				return fmt.Errorf("%s registry: %w", nmi, err)
			}
			return &stalled{index: nmi + "'s registry index", at: at, want: height, since: stall}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// explorerClient follows the explorer's index as an auditor, market
// surveillance: the explorer's event stream starts with the number of
// blocks its index holds (its checkpoint) and announces each block it
// indexes.
type explorerClient struct {
	base  string
	token string
	// http keeps the session cookie and does not follow redirects.
	http *http.Client
}

func newExplorerClient(nw *consortium.Network) (*explorerClient, error) {
	token, err := os.ReadFile(filepath.Join(nw.SurveillanceCredentialsDir(), "auditor.token"))
	if err != nil {
		return nil, fmt.Errorf("explorer token: %w", err)
	}
	caFile := nw.TLSCACert(consortium.ExplorerHost(nw.Topology))
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("explorer TLS root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("explorer TLS root %s: no certificate", caFile)
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	return newExplorerClientWith(consortium.ExplorerURL(nw.Topology), strings.TrimSpace(string(token)), transport), nil
}

func newExplorerClientWith(base, token string, transport http.RoundTripper) *explorerClient {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &explorerClient{base: base, token: token, http: &http.Client{Transport: transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// errSignedOut is the explorer asking for a sign-in (no session, or one
// the explorer forgot when it restarted).
var errSignedOut = errors.New("not signed in to the explorer")

// signIn opens a session as a browser would: the token posted to /login,
// answered with a redirect and the session cookie.
func (c *explorerClient) signIn(ctx context.Context) error {
	form := url.Values{"token": {c.token}, "next": {"/"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sign in to the explorer: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign in to the explorer: status %d", resp.StatusCode)
	}
	return nil
}

// await waits until the explorer's index holds height blocks and returns
// the height it announced. It signs in when asked to, opens a new stream
// when one ends or the explorer does not answer (it may be starting), and
// gives up once the index has not moved for stall.
func (c *explorerClient) await(ctx context.Context, height uint64, stall time.Duration) (uint64, error) {
	var at uint64
	moved := time.Now()
	seen := func(h uint64) {
		if h > at {
			at, moved = h, time.Now()
		}
	}
	var signedIn time.Time
	for {
		err := c.stream(ctx, height, seen, func() bool { return time.Since(moved) > stall })
		switch {
		case err == nil:
			return at, nil
		case ctx.Err() != nil:
			return at, ctx.Err()
		case errors.Is(err, errSignedOut) && time.Since(signedIn) > 5*time.Second:
			// A session lasts hours; one refused right after it was opened
			// would be refused again.
			if err := c.signIn(ctx); err != nil {
				return at, err
			}
			signedIn = time.Now()
			continue
		}
		if time.Since(moved) > stall {
			if errors.Is(err, errStalled) {
				return at, &stalled{index: "the explorer's index", at: at, want: height, since: stall}
			}
			return at, err
		}
		select {
		case <-ctx.Done():
			return at, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

var errStalled = errors.New("no progress")

// stream reads one event stream until it announces height: nil then. It
// passes every height announced to seen, and checks stalled at every line
// (the explorer sends a heartbeat while no block comes).
func (c *explorerClient) stream(ctx context.Context, height uint64, seen func(uint64), stalled func() bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return errSignedOut
	default:
		return fmt.Errorf("explorer events: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			var ev struct {
				Height *uint64 `json:"height"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(data)), &ev) == nil && ev.Height != nil {
				seen(*ev.Height)
				if *ev.Height >= height {
					return nil
				}
			}
		}
		if stalled() {
			return errStalled
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the explorer's event stream ended")
}
