//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// cli runs the pki command line as one of an NMI's credentials and logs
// the command and what it printed: the test's transcript.
type cli struct {
	t             *testing.T
	nmi, role     string
	api, ca, file string
}

func pkiCLI(t *testing.T, nmi string, role api.Role) *cli {
	t.Helper()
	np, err := profile.NMI(nmi)
	if err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, nmi: nmi, role: string(role), api: np.Registry, ca: np.TLSRootCert, file: np.Tokens[string(role)]}
}

// run runs pki with args and returns its output and error; it fails the
// test only if the command could not be started.
func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(network.Bin, "pki"), args...)
	cmd.Env = append(os.Environ(), "PKI_API="+c.api, "PKI_CA="+c.ca, "PKI_TOKEN_FILE="+c.file, "PKI_TOKEN=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		c.t.Fatalf("pki %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("$ pki %s    # %s %s\n%s", strings.Join(args, " "), c.nmi, c.role, strings.TrimRight(string(out), "\n"))
	return string(out), err
}

// ok runs pki and requires success.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("pki %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// refused runs pki and requires a refusal naming code.
func (c *cli) refused(code meter.Code, args ...string) string {
	c.t.Helper()
	out, err := c.run("", args...)
	if err == nil || !strings.Contains(out, string(code)) {
		c.t.Fatalf("pki %s: want a refusal %s, got %v", strings.Join(args, " "), code, err)
	}
	return out
}

func softwareOf(name string) meter.Software {
	sum := sha256.Sum256([]byte("legally relevant part of " + name))
	return meter.Software{ID: name, Checksum: "sha256:" + hex.EncodeToString(sum[:])}
}

// TestLegallyRelevantSoftware runs a meter type's life on the real
// consortium, through the registry, its command line and the explorer in a
// browser: PTB records a type with two versions, registers 50 meters of it
// on v1, a reading naming v1 is accepted, each meter reports its update to
// v2 in a statement signed with its own key, a reading still naming v1 is
// refused SOFTWARE_MISMATCH, PTB withdraws v2, a reading naming v2 is
// refused SOFTWARE_NOT_APPROVED, and CMI cannot approve a version of PTB's
// type. What is asserted is read back from the ledger, not only from the
// answers.
func TestLegallyRelevantSoftware(t *testing.T) {
	ctx := context.Background()
	const meters = 50
	v1, v2 := softwareOf("EM-FW 5.0.0"), softwareOf("EM-FW 5.0.1")
	typeID := uniqueID("PTB-TYPE")
	ptb, cmi := pkiCLI(t, "PTB", api.RoleOperator), pkiCLI(t, "CMI", api.RoleOperator)
	cmiIngest := pkiCLI(t, "CMI", api.RoleIngest)
	operator, ingest := registry(t, "PTB", api.RoleOperator), registry(t, "PTB", api.RoleIngest)
	ledger, ptbPeer := connect(t, "CMI", consortium.UserAuditor), connect(t, "PTB", consortium.UserAuditor)
	start := time.Now().UTC().Truncate(time.Second)

	// The type, recorded by its certifying NMI through the command line.
	certified := start.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	file := filepath.Join(t.TempDir(), typeID+".json")
	record := meter.TypeRecord{TypeID: typeID, Manufacturer: "Example Metering GmbH", Model: "EM-5000",
		Certificate: "DE-26-MI003-PTB" + typeID[len(typeID)-4:], Versions: []meter.VersionApproval{
			{Software: v1, ApprovedFrom: certified}, {Software: v2, ApprovedFrom: certified}}}
	if err := os.WriteFile(file, []byte(mustJSON(t, record)), 0o644); err != nil {
		t.Fatal(err)
	}
	ptb.ok("type", "record", file)

	// 50 meters of the type, on v1.
	keys := map[string]*meter.PrivateKey{}
	regs := make([]meter.Registration, meters)
	ids := make([]string, meters)
	for i := range regs {
		k, err := meter.GenerateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = fmt.Sprintf("%s-M%02d", typeID, i)
		keys[ids[i]] = k
		regs[i] = proved(t, "PTBMSP", k, meter.Registration{MeterID: ids[i], PublicKey: k.Public().PEM(), TypeID: typeID,
			Metadata: meter.Metadata{Manufacturer: record.Manufacturer, Model: record.Model, SerialNumber: fmt.Sprintf("SN-%s-%02d", typeID, i),
				SoftwareID: v1.ID, SoftwareChecksum: v1.Checksum}})
	}
	if _, err := operator.RegisterMeters(ctx, regs); err != nil {
		t.Fatalf("register %d meters of %s: %v", meters, typeID, err)
	}
	ptb.ok("type", "meters", typeID)

	// One reading naming v1 from every meter: all accepted.
	at := start.Add(-2 * time.Minute)
	seq := uint64(0)
	readings := func(software string, when time.Time) []meter.SignedMeasurement {
		seq++
		items := make([]meter.SignedMeasurement, meters)
		for i, id := range ids {
			sm, err := meter.Sign(keys[id], meter.Measurement{MeterID: id, Seq: seq, Time: when.Format(time.RFC3339Nano), Value: "12.5", Unit: "kWh", SoftwareID: software})
			if err != nil {
				t.Fatal(err)
			}
			items[i] = sm
		}
		return items
	}
	batch, err := ingest.SubmitBatch(ctx, readings(v1.ID, at))
	if err != nil || batch.Accepted != meters {
		t.Fatalf("readings naming v1: %+v, %v", batch, err)
	}

	// Each meter reports its update to v2, signed with its own key. The
	// first meter's statement is signed with openssl and delivered through
	// CMI's registry by the command line; the others through PTB's.
	// The meters' clocks, to the nanosecond: the update ends after their
	// registration, and every later event of the test after the one
	// before, all in the past by the time the explorer is looked at (it
	// judges a version withdrawn as of its own clock).
	updated := time.Now().UTC()
	after := updated.Add(time.Millisecond)
	first := ids[0]
	stmt, err := meter.UpdateStatement{MeterID: first, Time: updated.Format(time.RFC3339Nano), From: v1, To: v2, Result: meter.UpdateSuccess}.Statement()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, stmtFile, sigFile := filepath.Join(dir, "meter.key.pem"), filepath.Join(dir, "update.json"), filepath.Join(dir, "update.sig")
	keyPEM, err := keys[first].PEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, []byte(keyPEM))
	writeFile(t, stmtFile, stmt)
	openssl(t, "dgst", "-sha256", "-sign", keyFile, "-out", sigFile, stmtFile)
	cmiIngest.ok("software", "update", "--statement", stmtFile, "--signature", sigFile)
	var wg sync.WaitGroup
	errs := make(chan error, meters)
	for _, id := range ids[1:] {
		wg.Go(func() {
			su, err := meter.SignUpdate(keys[id], meter.UpdateStatement{MeterID: id, Time: updated.Format(time.RFC3339Nano), From: v1, To: v2, Result: meter.UpdateSuccess})
			if err == nil {
				_, err = ingest.SubmitSoftwareUpdate(ctx, su)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The ledger, read through another NMI's peer once every peer holds
	// what PTB's and CMI's registries acknowledged, says every meter runs v2.
	caughtUp(t, ptbPeer, ledger)
	for _, id := range ids {
		var m meter.Meter
		if err := json.Unmarshal(ledger.evaluate(t, wire.TxGetMeter, id), &m); err != nil {
			t.Fatal(err)
		}
		if m.CurrentSoftware() != v2 || m.Updates == nil || m.Updates.Count != 1 {
			t.Fatalf("meter %s on the ledger runs %s after %+v", id, m.CurrentSoftware(), m.Updates)
		}
	}
	ptb.ok("software", "log", first)

	// A reading still naming v1, signed after the update: refused.
	batch, err = ingest.SubmitBatch(ctx, readings(v1.ID, after))
	if err != nil || batch.Rejected != meters {
		t.Fatalf("readings naming v1 after the update: %+v, %v", batch, err)
	}
	for _, item := range batch.Items {
		if item.Code != meter.CodeSoftwareMismatch {
			t.Fatalf("item %+v, want %s", item, meter.CodeSoftwareMismatch)
		}
	}
	t.Logf("%d readings naming v1 after the update refused %s: %s", batch.Rejected, meter.CodeSoftwareMismatch, batch.Items[0].Reason)
	key1 := filepath.Join(dir, "meter.key.pem")
	signed, err := ptb.run("", "sign", "--key", key1, "--meter", first, "--seq", "90", "--value", "13.5", "--software-id", v2.ID, "--time", after.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	ingestCLI := pkiCLI(t, "PTB", api.RoleIngest)
	if _, err := ingestCLI.run(signed, "submit", "-"); err != nil {
		t.Fatalf("a reading naming v2 after the update: %v", err)
	}

	// PTB withdraws v2 from just after that reading; a later reading naming
	// it is refused.
	withdrawnFrom := after.Add(time.Millisecond)
	ptb.ok("type", "withdraw", typeID, "--software-id", v2.ID, "--reason", "energy register drifts under harmonic load",
		"--from", withdrawnFrom.Format(time.RFC3339Nano))
	late := withdrawnFrom.Add(time.Millisecond)
	signed, err = ptb.run("", "sign", "--key", key1, "--meter", first, "--seq", "91", "--value", "13.75", "--software-id", v2.ID, "--time", late.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ingestCLI.run(signed, "submit", "-"); err == nil || !strings.Contains(out, string(meter.CodeSoftwareNotApproved)) {
		t.Fatalf("a reading naming the withdrawn v2: %v", err)
	}
	batch, err = ingest.SubmitBatch(ctx, readings(v2.ID, late))
	if err != nil || batch.Rejected != meters {
		t.Fatalf("readings naming the withdrawn v2: %+v, %v", batch, err)
	}
	for _, item := range batch.Items {
		if item.Code != meter.CodeSoftwareNotApproved && !(item.MeterID == first && item.Code == meter.CodeReplay) {
			t.Fatalf("item %+v, want %s", item, meter.CodeSoftwareNotApproved)
		}
	}

	// Another NMI cannot approve a version of PTB's type.
	evil := softwareOf("EM-FW 6.6.6")
	cmi.refused(meter.CodeNotOwner, "type", "approve", typeID, "--software-id", evil.ID, "--software-checksum", evil.Checksum)
	caughtUp(t, ptbPeer, ledger)
	var mt meter.MeterType
	if err := json.Unmarshal(ledger.evaluate(t, wire.TxGetMeterType, typeID), &mt); err != nil {
		t.Fatal(err)
	}
	if len(mt.Versions) != 2 || mt.Version(evil.ID) != nil || mt.Version(v2.ID).Withdrawal == nil {
		t.Fatalf("type %s on the ledger: %+v", typeID, mt.Versions)
	}
	ptb.ok("type", "show", typeID)

	t.Run("the explorer shows the type, the meter's history and the dashboard line", func(t *testing.T) {
		explorerSoftware(t, ledger, typeID, first, v1, v2, meters)
	})
}

// explorerSoftware checks, in a real browser, the type page (v2 withdrawn,
// the meters on it), the first meter's software history and the dashboard's
// count of meters on withdrawn software.
func explorerSoftware(t *testing.T, ledger *session, typeID, meterID string, v1, v2 meter.Software, meters int) {
	token, err := os.ReadFile(filepath.Join(network.SurveillanceCredentialsDir(), "auditor.token"))
	if err != nil {
		t.Fatal(err)
	}
	url := consortium.ExplorerURL(network.Topology)
	b := browser(t)
	err = chromedp.Do(b,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`input[name="token"]`),
		chromedp.SendKeys(`input[name="token"]`, strings.TrimSpace(string(token))),
		chromedp.Submit(`input[name="token"]`),
		chromedp.WaitVisible(`#height`),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The explorer follows the chain live: wait until its dashboard shows
	// every block the test made, the withdrawal's included.
	height, err := channel.Height(context.Background(), ledger.network)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chromedp.Run(b, chromedp.Poll[bool](fmt.Sprintf(`parseInt(document.querySelector('#height').textContent.replace(/\D/g,'')) >= %d`, height),
		chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		t.Fatalf("the dashboard never showed height %d: %v", height, err)
	}
	withdrawn := fmt.Sprintf(`tr[data-version=%q][data-withdrawn]`, v2.ID)
	if err := chromedp.Do(b, chromedp.Navigate(url+"/types/"+typeID), chromedp.WaitVisible(withdrawn)); err != nil {
		t.Fatalf("the type page of %s does not show %s withdrawn: %v", typeID, v2.ID, err)
	}
	running, err := chromedp.Run(b, chromedp.Text(fmt.Sprintf(`tr[data-version=%q] td[data-running]`, v2.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(running) != fmt.Sprint(meters) {
		t.Fatalf("the type page counts %q meters on %s, want %d", running, v2.ID, meters)
	}
	screenshot(t, b, "meter-type")

	if err := chromedp.Do(b, chromedp.Navigate(url+"/meters/"+meterID), chromedp.WaitVisible(`#software-history`)); err != nil {
		t.Fatal(err)
	}
	history, err := chromedp.Run(b, chromedp.Text(`#software-history`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{v1.ID, v2.ID, "success"} {
		if !strings.Contains(history, want) {
			t.Fatalf("the software history of %s does not show %q:\n%s", meterID, want, history)
		}
	}
	screenshot(t, b, "meter-software")

	if err := chromedp.Do(b, chromedp.Navigate(url+"/"), chromedp.WaitVisible(`#withdrawn-software`)); err != nil {
		t.Fatal(err)
	}
	count, err := chromedp.Run(b, chromedp.Text(`#withdrawn-count`))
	if err != nil {
		t.Fatal(err)
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, count)
	if n, err := strconv.Atoi(digits); err != nil || n < meters {
		t.Fatalf("the dashboard counts %q meters on withdrawn software, want at least the %d of this test", count, meters)
	}
	screenshot(t, b, "dashboard-software")
}

// caughtUp waits until every member's peer holds every block the given
// sessions' peers hold: what their NMIs' registries acknowledged is then
// readable through any peer.
func caughtUp(t *testing.T, peers ...*session) {
	t.Helper()
	var height uint64
	for _, s := range peers {
		h, err := channel.Height(context.Background(), s.network)
		if err != nil {
			t.Fatal(err)
		}
		height = max(height, h)
	}
	settle(t, height-1)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
