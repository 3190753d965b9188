package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
)

// The transaction page and a meter's readings read what the index does
// not keep from the peer's blocks. When the peer cannot serve them, the
// pages still show what the index keeps, and say why the rest is missing;
// when it serves a block other than the one the explorer verified, they
// show none of it, say so, and log it as the alarm it is.
func TestEvidenceUnread(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		says     string
		mismatch bool
	}{
		{"peer down", errors.New("connection refused"), "connection refused", false},
		{"peer lies", fmt.Errorf("block 3: %w: header hash 00", index.ErrMismatch), "differently from the block the explorer verified", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.peer.err = tc.err
			cookie := f.session(t)
			revoke := f.blocks[3].Txs[0]
			res, body := f.get(t, "/tx/"+revoke.ID, cookie)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			for _, want := range []string{`id="unread"`, tc.says, `href="/blocks/3"`, `RevokeMeter`, `badge ok">VALID`, `PTBMSP`} {
				if !strings.Contains(body, want) {
					t.Errorf("transaction page lacks %s", want)
				}
			}
			if strings.Contains(body, "MeterRevoked") {
				t.Error("the transaction page shows an event it could not read")
			}
			if got := strings.Contains(body, `id="unread" class="message bad"`); got != tc.mismatch {
				t.Errorf("shown as an alarm: %v, want %v", got, tc.mismatch)
			}

			_, body = f.get(t, "/meters/SYN-0000002", cookie)
			for _, want := range []string{`id="unread"`, tc.says, `✗ refused`, `REPLAY`, `was accepted before`, `✓ accepted`, `title="not read from the peer"`} {
				if !strings.Contains(body, want) {
					t.Errorf("meter page lacks %s", want)
				}
			}
			if strings.Contains(body, "kWh") {
				t.Error("the meter page shows a unit it could not read")
			}
			if got := strings.Contains(f.log.String(), "level=ERROR"); got != tc.mismatch {
				t.Errorf("logged as an error: %v, want %v:\n%s", got, tc.mismatch, f.log)
			}
		})
	}
}

// Without a peer the pages show what the index keeps.
func TestNoPeer(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.evidence = nil
	cookie := f.session(t)
	_, body := f.get(t, "/tx/"+f.blocks[3].Txs[0].ID, cookie)
	if !strings.Contains(body, "no connection to a peer") || !strings.Contains(body, "RevokeMeter") {
		t.Errorf("transaction page without a peer:\n%s", body)
	}
	_, body = f.get(t, "/meters/SYN-0000001", cookie)
	if !strings.Contains(body, "no connection to a peer") || !strings.Contains(body, "✓ accepted") {
		t.Errorf("meter page without a peer:\n%s", body)
	}
	if _, body = f.get(t, "/meters/SYN-0000004", cookie); strings.Contains(body, `id="unread"`) {
		t.Error("a meter without readings says its readings were not read")
	}
}
