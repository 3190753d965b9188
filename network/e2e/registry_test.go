//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
	"github.com/inter-nmi/pki/registry-api/simulator"
)

// registry returns a client of an NMI's registry API with one of its
// credentials.
func registry(t *testing.T, nmi string, role api.Role) *client.Client {
	t.Helper()
	np, err := profile.NMI(nmi)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(np.Tokens[string(role)])
	if err != nil {
		t.Fatalf("%s %s token: %v", nmi, role, err)
	}
	c, err := client.New(client.Options{BaseURL: np.Registry, Token: strings.TrimSpace(string(token)), CACert: np.TLSRootCert})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantProblem(t *testing.T, err error, status int, code string) {
	t.Helper()
	var p *api.Problem
	if err == nil {
		t.Fatalf("expected problem %d %s, got success", status, code)
	}
	if !errors.As(err, &p) || p.Status != status || p.Code != code {
		t.Fatalf("expected problem %d %s, got %v", status, code, err)
	}
	t.Logf("refused as expected: %d %s: %s", p.Status, p.Code, p.Detail)
}

// fleetCSV makes n meters with their own keys and the manufacturer's CSV
// that enrols them at the NMI nmi (MSP ID): public keys as base64 DER, as a
// spreadsheet holds them, and each meter's proof of possession for nmi.
// proofs are those proofs by meter ID.
func fleetCSV(t *testing.T, nmi, prefix string, n int) (ids []string, keys map[string]*meter.PrivateKey, proofs map[string]string, sheet []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"meterId", "publicKey", "manufacturer", "model", "serialNumber", "softwareId", "softwareChecksum", "proof"})
	ids = make([]string, n)
	keys, proofs = map[string]*meter.PrivateKey{}, map[string]string{}
	for i := range n {
		k, err := meter.GenerateKey(meter.P256)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = fmt.Sprintf("%s-%04d", prefix, i)
		keys[ids[i]] = k
		proofs[ids[i]] = proved(t, nmi, k, meter.Registration{MeterID: ids[i]}).Proof
		_ = w.Write([]string{ids[i], base64.StdEncoding.EncodeToString(k.Public().DER()), "Example Metering GmbH", "EM-3000",
			fmt.Sprintf("SN%08d", i), "EM-FW 4.2.1", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", proofs[ids[i]]})
	}
	w.Flush()
	return ids, keys, proofs, buf.Bytes()
}

// TestRegistryAPI drives the registry over HTTPS on the real consortium:
// another NMI's attempt to bind PTB's meter keys first, bulk enrolment from
// CSV at PTB, cross-NMI reads, roles, idempotent retries and measurement
// delivery.
func TestRegistryAPI(t *testing.T) {
	ctx := context.Background()
	ptbOperator := registry(t, "PTB", api.RoleOperator)
	ptbAuditor := registry(t, "PTB", api.RoleAuditor)
	cmiOperator := registry(t, "CMI", api.RoleOperator)
	cmiAuditor := registry(t, "CMI", api.RoleAuditor)
	ingest := registry(t, "NMIJ", api.RoleIngest)

	ids, keys, proofs, sheet := fleetCSV(t, "PTBMSP", uniqueID("PTB-CSV"), 1000)

	// CMI's registrar has learnt PTB's delivery list, public keys and the
	// meters' proofs included, before PTB registers it, and tries to bind
	// its keys first: under PTB's meter ID, under an ID of its own, and
	// without a proof. Every proof names PTBMSP, so none holds for CMIMSP.
	stolen, taken := ids[999], uniqueID("CMI-TAKEN")
	t.Run("another NMI's operator cannot bind PTB's meter keys", func(t *testing.T) {
		key := keys[stolen]
		withPTBProof := meterRegistration(stolen, key.Public().PEM())
		withPTBProof.Proof = proofs[stolen]
		underOwnID := meterRegistration(taken, key.Public().PEM())
		underOwnID.Proof = proofs[stolen]
		for what, reg := range map[string]meter.Registration{
			"PTB's meter ID with the meter's proof for PTB":   withPTBProof,
			"an ID of CMI's with the meter's proof for PTB":   underOwnID,
			"an ID of CMI's with the key alone, and no proof": meterRegistration(taken, key.Public().PEM()),
		} {
			_, err := cmiOperator.RegisterMeter(ctx, reg)
			var p *api.Problem
			if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity || p.Code != string(meter.CodeBadSignature) ||
				!strings.Contains(p.Detail, "meter "+reg.MeterID) || !strings.Contains(p.Detail, "CMIMSP") {
				t.Fatalf("%s: %v; want 422 BAD_SIGNATURE naming the meter and CMIMSP", what, err)
			}
			t.Logf("%s: refused as expected: %s", what, p.Detail)
		}
		// The whole delivery list as PTB would send it: every entry refused.
		_, err := cmiOperator.RegisterMetersCSV(ctx, sheet)
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity || p.Code != string(meter.CodeBadSignature) ||
			!strings.HasPrefix(p.Detail, "1000 of 1000 entries are refused") || len(p.Errors) != 50 ||
			!strings.HasPrefix(p.Errors[0], fmt.Sprintf(`CSV line 2 (meter %q): BAD_SIGNATURE`, ids[0])) {
			t.Fatalf("CMI sends PTB's delivery list: %v; want every entry refused with BAD_SIGNATURE", err)
		}
		// Past the registry, CMI's registrar is refused by the chaincode.
		connect(t, "CMI", consortium.UserRegistrar).refused(t, meter.CodeBadSignature, "RegisterMeter", mustJSON(t, withPTBProof))
		// Nothing reached the ledger: no such meters, at CMI's peer or PTB's.
		for _, id := range []string{stolen, taken} {
			for _, c := range []*client.Client{cmiAuditor, ptbAuditor} {
				_, err := c.GetMeter(ctx, id, client.Read{})
				wantProblem(t, err, http.StatusNotFound, string(meter.CodeMeterNotFound))
			}
		}
	})

	start := time.Now()
	enrolled, err := ptbOperator.RegisterMetersCSV(ctx, sheet)
	if err != nil {
		t.Fatalf("register 1,000 meters from CSV: %v", err)
	}
	if enrolled.Registered != 1000 || len(enrolled.MeterIDs) != 1000 || len(enrolled.Transactions) != 1 {
		t.Fatalf("enrolment: %d registered, %d IDs, %d transactions", enrolled.Registered, len(enrolled.MeterIDs), len(enrolled.Transactions))
	}
	block := enrolled.Transactions[0].Block
	t.Logf("1,000 meters from CSV registered in %s, block %d", time.Since(start).Round(time.Millisecond), block)

	t.Run("PTB's meter keeps the key CMI tried to take", func(t *testing.T) {
		m, err := cmiAuditor.GetMeter(ctx, stolen, client.Read{MinBlock: block})
		if err != nil || m.NMI != "PTBMSP" || m.Fingerprint != keys[stolen].Public().Fingerprint() {
			t.Fatalf("CMI reads %s as %+v (%v); want PTB's, with the key of PTB's delivery list", stolen, m, err)
		}
		_, err = cmiAuditor.GetMeter(ctx, taken, client.Read{MinBlock: block})
		wantProblem(t, err, http.StatusNotFound, string(meter.CodeMeterNotFound))
	})

	t.Run("another NMI's auditor reads a PTB meter", func(t *testing.T) {
		m, err := cmiAuditor.GetMeter(ctx, ids[517], client.Read{MinBlock: block})
		if err != nil {
			t.Fatal(err)
		}
		if m.NMI != "PTBMSP" || m.Fingerprint != keys[ids[517]].Public().Fingerprint() || m.Status != meter.StatusActive {
			t.Fatalf("CMI reads %+v", m)
		}
		list, err := cmiAuditor.ListMeters(ctx, client.ListOptions{NMI: "PTBMSP", Status: "active", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Meters) != 1000 {
			t.Fatalf("CMI lists %d active PTB meters on a page of 1,000; at least 1,000 exist", len(list.Meters))
		}
		for _, m := range list.Meters {
			if m.NMI != "PTBMSP" || m.Status != meter.StatusActive {
				t.Fatalf("the PTB/active listing holds %s of %s, %s", m.ID, m.NMI, m.Status)
			}
		}
	})

	t.Run("auditors cannot write", func(t *testing.T) {
		k, _ := meter.GenerateKey(meter.P256)
		_, err := ptbAuditor.RegisterMeter(ctx, proved(t, "PTBMSP", k, meter.Registration{MeterID: uniqueID("PTB-AUD"), PublicKey: k.Public().PEM(),
			Metadata: meter.Metadata{Manufacturer: "x", Model: "x", SerialNumber: "x", SoftwareID: "x", SoftwareChecksum: "sha256:00000000"}}))
		wantProblem(t, err, http.StatusForbidden, api.CodeRoleForbidden)
		_, err = ptbAuditor.RevokeMeter(ctx, ids[0], api.RevokeRequest{Reason: meter.ReasonKeyCompromise})
		wantProblem(t, err, http.StatusForbidden, api.CodeRoleForbidden)
	})

	t.Run("another NMI's operator cannot revoke a PTB meter", func(t *testing.T) {
		_, err := registry(t, "CMI", api.RoleOperator).RevokeMeter(ctx, ids[1], api.RevokeRequest{Reason: meter.ReasonKeyCompromise})
		wantProblem(t, err, http.StatusForbidden, string(meter.CodeNotOwner))
	})

	t.Run("a measurement through another NMI's registry", func(t *testing.T) {
		sm := sign(t, keys[ids[2]], ids[2], 1, time.Now().Add(-time.Minute))
		r, err := ingest.SubmitMeasurement(ctx, sm)
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != 1 || r.TxID == "" || r.Block == 0 {
			t.Fatalf("receipt %+v", r)
		}
		// Re-delivered through another NMI's registry, without the first
		// request's Idempotency-Key: answered as accepted before.
		dup, err := registry(t, "INMETRO", api.RoleIngest).SubmitMeasurement(ctx, sm)
		if err != nil || !dup.Duplicate || dup.TxID != r.TxID || dup.Block != r.Block {
			t.Fatalf("re-delivery answered %+v, %v; first %+v", dup, err, r)
		}
		_, err = ingest.SubmitMeasurement(ctx, sign(t, keys[ids[2]], ids[2], 1, time.Now().Add(-2*time.Minute)))
		wantProblem(t, err, http.StatusConflict, string(meter.CodeReplay))
		forged := sign(t, keys[ids[3]], ids[2], 2, time.Now())
		_, err = ingest.SubmitMeasurement(ctx, forged)
		wantProblem(t, err, http.StatusUnprocessableEntity, string(meter.CodeBadSignature))
		list, err := ptbAuditor.Measurements(ctx, ids[2], client.MeasurementQuery{Read: client.Read{MinBlock: r.Block}})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Measurements) != 1 || list.Measurements[0].TxID != r.TxID {
			t.Fatalf("PTB lists %+v", list.Measurements)
		}
	})

	t.Run("four registrations of one meter ID at once: one wins, three hear who", func(t *testing.T) {
		// As four simulator runs started in the same second did: each
		// transaction may be endorsed before the winner commits, and is
		// then invalidated by the key-level policy the winner set. The
		// truthful answer is the conflict, not an internal error. Meter IDs
		// name their NMI, so the race is within PTB's namespace; another
		// NMI may not register the ID at all.
		id := uniqueID("PTB-RACE")
		np, err := profile.NMI("PTB")
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			k, _ := meter.GenerateKey(meter.P256)
			reg := proved(t, np.MSPID, k, meter.Registration{MeterID: id, PublicKey: k.Public().PEM(), Metadata: meter.Metadata{Manufacturer: "Race",
				Model: "R1", SerialNumber: fmt.Sprint(i), SoftwareID: "fw 1", SoftwareChecksum: "sha256:0123456789abcdef"}})
			c := registry(t, "PTB", api.RoleOperator)
			wg.Go(func() { _, errs[i] = c.RegisterMeter(ctx, reg) })
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			if err == nil {
				won++
				continue
			}
			wantProblem(t, err, http.StatusConflict, string(meter.CodeMeterExists))
			t.Logf("registration %d: %v", i, err)
		}
		if won != 1 {
			t.Fatalf("%d registrations of %s succeeded: %v", won, id, errs)
		}
		k, _ := meter.GenerateKey(meter.P256)
		cmi, err := profile.NMI("CMI")
		if err != nil {
			t.Fatal(err)
		}
		reg := proved(t, cmi.MSPID, k, meter.Registration{MeterID: uniqueID("PTB-RACE"), PublicKey: k.Public().PEM(), Metadata: meter.Metadata{Manufacturer: "Race",
			Model: "R1", SerialNumber: "cmi", SoftwareID: "fw 1", SoftwareChecksum: "sha256:0123456789abcdef"}})
		_, err = registry(t, "CMI", api.RoleOperator).RegisterMeter(ctx, reg)
		wantProblem(t, err, http.StatusForbidden, string(meter.CodeNotOwner))
	})

	t.Run("metrics only on the operations address", func(t *testing.T) {
		np, err := profile.NMI("PTB")
		if err != nil {
			t.Fatal(err)
		}
		hc := httpsClient(t, np.TLSRootCert)
		ptb, _ := network.Topology.NMI("PTB")
		admin := filepath.Join(network.CryptoDir(ptb), "users", "Admin", "tls")
		pair, err := tls.LoadX509KeyPair(filepath.Join(admin, "cert.pem"), filepath.Join(admin, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		monitor := httpsClient(t, np.TLSRootCert)
		monitor.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{pair}
		get := func(hc *http.Client, url string) (int, string) {
			resp, err := hc.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if status, _ := get(monitor, np.Registry+"/metrics"); status != http.StatusNotFound {
			t.Errorf("GET /metrics on the API's address: %d, want 404", status)
		}
		if status, _ := get(hc, np.RegistryOperations+"/metrics"); status != http.StatusUnauthorized {
			t.Errorf("GET /metrics on the operations address without a client certificate: %d, want 401", status)
		}
		status, body := get(monitor, np.RegistryOperations+"/metrics")
		if status != http.StatusOK || !strings.Contains(body, `registry_http_requests_total{method="POST",route="/api/v1/meters/batch"`) {
			t.Errorf("GET /metrics on the operations address: %d, without the API's request counts", status)
		}
	})

	t.Run("a retried write with the same Idempotency-Key is applied once", func(t *testing.T) {
		np, _ := profile.NMI("PTB")
		k, _ := meter.GenerateKey(meter.P256)
		id := uniqueID("PTB-IDEM")
		body := registration(t, "PTBMSP", id, k)
		key := "retry-" + id
		first := rawPost(t, np.Registry+api.Prefix+"/meters", np.Tokens["operator"], np.TLSRootCert, key, body)
		second := rawPost(t, np.Registry+api.Prefix+"/meters", np.Tokens["operator"], np.TLSRootCert, key, body)
		if first.status != http.StatusCreated || second.status != http.StatusCreated || first.body != second.body {
			t.Fatalf("first %d %s\nsecond %d %s", first.status, first.body, second.status, second.body)
		}
		if second.replayed != "true" {
			t.Fatal("the second answer is not marked Idempotent-Replayed")
		}
		history, err := ptbAuditor.MeterHistory(ctx, id, client.Read{})
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != 1 {
			t.Fatalf("the meter has %d versions after a retried registration", len(history))
		}
		// Repeated without the key, the identical registration is answered
		// from the ledger as the duplicate it is, writing nothing; with
		// other details it is a conflict.
		third := rawPost(t, np.Registry+api.Prefix+"/meters", np.Tokens["operator"], np.TLSRootCert, "", body)
		if third.status != http.StatusOK || !strings.Contains(third.body, `"duplicate":true`) {
			t.Fatalf("an identical registration without the key: %d %s", third.status, third.body)
		}
		k2, _ := meter.GenerateKey(meter.P256)
		fourth := rawPost(t, np.Registry+api.Prefix+"/meters", np.Tokens["operator"], np.TLSRootCert, "", registration(t, "PTBMSP", id, k2))
		if fourth.status != http.StatusConflict || !strings.Contains(fourth.body, string(meter.CodeMeterExists)) {
			t.Fatalf("a registration of the meter with another key: %d %s", fourth.status, fourth.body)
		}
		if history, err := ptbAuditor.MeterHistory(ctx, id, client.Read{}); err != nil || len(history) != 1 {
			t.Fatalf("the meter has %d versions after repeated registrations (%v)", len(history), err)
		}
	})
}

func sign(t *testing.T, k *meter.PrivateKey, id string, seq uint64, at time.Time) meter.SignedMeasurement {
	t.Helper()
	sm, err := meter.Sign(k, meter.Measurement{MeterID: id, Seq: seq, Time: at.UTC().Format(time.RFC3339), Value: "1.250", Unit: "kWh"})
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

type rawAnswer struct {
	status   int
	body     string
	replayed string
}

// rawPost sends a request by hand, to control the Idempotency-Key.
func rawPost(t *testing.T, url, tokenFile, caFile, key, body string) rawAnswer {
	t.Helper()
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := httpsClient(t, caFile)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, body: string(b), replayed: resp.Header.Get("Idempotent-Replayed")}
}

func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// TestSimulatorDay has the meter simulator deliver a day of 15-minute
// readings of 100 meters through data concentrators (batches, at INMETRO's
// registry, meters enrolled at PTB), checks every reading is on the ledger,
// and that the re-delivered last batch is answered item by item as
// duplicates of what was accepted, with nothing filed as a refusal.
func TestSimulatorDay(t *testing.T) {
	ctx := context.Background()
	fleet, err := simulator.Generate(simulator.MeterIDs(uniqueID("PTB-SIM"), 1, 100), meter.P256)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := fleet.Registrations("PTBMSP")
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := registry(t, "PTB", api.RoleOperator).RegisterMeters(ctx, regs)
	if err != nil {
		t.Fatal(err)
	}
	auditor := registry(t, "INMETRO", api.RoleAuditor)
	if _, err := auditor.GetMeter(ctx, fleet[0].ID, client.Read{MinBlock: enrolled.Transactions[0].Block}); err != nil {
		t.Fatal(err)
	}
	summary, err := simulator.Run(ctx, simulator.Options{
		Submitter: registry(t, "INMETRO", api.RoleIngest), Fleet: fleet, Seed: 7,
		Schedule: loadprofile.LastSlots(time.Now(), 15*time.Minute, 96),
		Batch:    500, Concurrency: 2, Replay: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	_ = summary.WriteText(&text)
	t.Log("\n" + text.String())
	if summary.Sent != 9600 || summary.Accepted != 9600 || summary.Rejected != 0 || summary.Failed != 0 {
		t.Fatalf("sent %d, accepted %d, rejected %d (%v), failed %d (%v)", summary.Sent, summary.Accepted,
			summary.Rejected, summary.RejectedByCode, summary.Failed, summary.Errors)
	}
	r := summary.Replay
	if r == nil || r.Items == 0 || r.Accepted != r.Items || r.Duplicates != r.Items || r.Rejected != 0 {
		t.Fatalf("the re-delivered batch: %+v", r)
	}
	for _, m := range fleet {
		list, err := auditor.Measurements(ctx, m.ID, client.MeasurementQuery{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Measurements) != 96 {
			t.Fatalf("meter %s has %d measurements on the ledger, want 96", m.ID, len(list.Measurements))
		}
		for i := 1; i < len(list.Measurements); i++ {
			if list.Measurements[i].Seq <= list.Measurements[i-1].Seq {
				t.Fatalf("meter %s: measurements out of order", m.ID)
			}
		}
	}
	// A re-delivery is no refusal: nothing was filed.
	for _, m := range fleet {
		rej, err := auditor.Rejections(ctx, m.ID, client.Read{}, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rej.Rejections) != 0 {
			t.Fatalf("meter %s has rejections on the ledger: %+v", m.ID, rej.Rejections)
		}
	}
}
