//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// browser starts headless Chromium (Debian's) for one test. It trusts
// exactly the explorer's certificate, by its public key, and nothing else.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Chromium is not installed (apt-get install chromium; .ci/run does it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", explorerSPKI(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// explorerSPKI is the base64 SHA-256 of the explorer certificate's public
// key, the form Chromium's --ignore-certificate-errors-spki-list takes.
func explorerSPKI(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(network.Root, "explorer", "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// screenshot keeps a full-page PNG as a test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("PKI_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "pki-e2e-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 makes a PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// TestExplorerInBrowser signs an auditor in to the explorer in a real
// browser, and follows a meter registered through the API during the test
// to its page and its registration block, and a refused measurement to the
// refusals page.
func TestExplorerInBrowser(t *testing.T) {
	ctx := context.Background()
	operator := registry(t, "PTB", api.RoleOperator)
	ingest := registry(t, "PTB", api.RoleIngest)
	key, err := meter.GenerateKey(meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID("PTB-WEB")
	reg, err := operator.RegisterMeter(ctx, proved(t, "PTBMSP", key, meter.Registration{MeterID: id, PublicKey: key.Public().PEM(),
		Metadata: meter.Metadata{Manufacturer: "Example Metering GmbH", Model: "EM-3000", SerialNumber: "SN-WEB",
			SoftwareID: "EM-FW 4.2.1", SoftwareChecksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}))
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, key, id, 1, time.Now().Add(-time.Minute))
	forged := sign(t, key, id, 2, time.Now())
	forged.Signature = good.Signature
	batch, err := ingest.SubmitBatch(ctx, []meter.SignedMeasurement{good, forged})
	if err != nil {
		t.Fatal(err)
	}
	if batch.Accepted != 1 || batch.Rejected != 1 {
		t.Fatalf("batch %+v", batch)
	}

	token, err := os.ReadFile(filepath.Join(network.SurveillanceCredentialsDir(), "auditor.token"))
	if err != nil {
		t.Fatal(err)
	}
	url := consortium.ExplorerURL(network.Topology)
	b := browser(t)

	t.Run("sign in and see the dashboard", func(t *testing.T) {
		err := chromedp.Do(b,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(`input[name="token"]`),
			chromedp.SendKeys(`input[name="token"]`, strings.TrimSpace(string(token))),
			chromedp.Submit(`input[name="token"]`),
			chromedp.WaitVisible(`#height`),
		)
		if err != nil {
			t.Fatal(err)
		}
		// The explorer follows the chain live: wait until the page, updated
		// by server-sent events, shows the batch's block.
		want := batch.Block + 1
		_, err = chromedp.Run(b, chromedp.Poll[bool](fmt.Sprintf(`parseInt(document.querySelector('#height').textContent.replace(/\D/g,'')) >= %d`, want),
			chromedp.WithPollingTimeout(60*time.Second)))
		if err != nil {
			t.Fatalf("the dashboard never showed height %d: %v", want, err)
		}
		integrity, err := chromedp.Run(b, chromedp.Text(`#integrity`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(integrity), "intact") {
			t.Fatalf("integrity verdict %q", integrity)
		}
		screenshot(t, b, "dashboard")
	})

	t.Run("the meter registered during the test, and its registration block", func(t *testing.T) {
		err := chromedp.Do(b,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(`input[name="q"]`),
			chromedp.SendKeys(`input[name="q"]`, id),
			chromedp.Submit(`input[name="q"]`),
			chromedp.WaitVisible(`[data-registration-block]`),
		)
		if err != nil {
			t.Fatal(err)
		}
		heading, err := chromedp.Run(b, chromedp.Text(`h1`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(heading, id) {
			t.Fatalf("meter page heading %q", heading)
		}
		screenshot(t, b, "meter")
		err = chromedp.Do(b,
			chromedp.Click(`[data-registration-block]`),
			chromedp.WaitVisible(`h1`),
		)
		if err != nil {
			t.Fatal(err)
		}
		blockText, err := chromedp.Run(b, chromedp.Text(`h1`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(blockText, strconv.FormatUint(reg.Block, 10)) {
			t.Fatalf("registration block page %q, want block %d", blockText, reg.Block)
		}
		body, err := chromedp.Run(b, chromedp.Text(`body`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, reg.TxID) {
			t.Fatalf("block %d's page does not list the registration %s", reg.Block, reg.TxID)
		}
		screenshot(t, b, "registration-block")
	})

	t.Run("the refused measurement on the refusals page", func(t *testing.T) {
		sel := fmt.Sprintf(`[data-meter=%q]`, id)
		err := chromedp.Do(b,
			chromedp.Navigate(url+"/refusals?meter="+id),
			chromedp.WaitVisible(sel),
		)
		if err != nil {
			t.Fatal(err)
		}
		row, err := chromedp.Run(b, chromedp.Text(sel))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(row, string(meter.CodeBadSignature)) {
			t.Fatalf("refusal row %q does not name %s", row, meter.CodeBadSignature)
		}
		screenshot(t, b, "refusals")
	})
}
