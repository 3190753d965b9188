//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/network/pkg/governance"
	"github.com/inter-nmi/pki/network/pkg/topology"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	regclient "github.com/inter-nmi/pki/registry-api/client"
)

// metas is the sixth NMI: METAS, Switzerland, on the ports after NMIM's.
func metas(t *testing.T) topology.NMI {
	t.Helper()
	last := network.Topology.NMIs[len(network.Topology.NMIs)-1]
	n := topology.NMI{Name: "METAS", MSPID: "METASMSP", Country: "CH", Domain: "metas.nmi.test", Host: last.Host,
		Peer:            topology.Peer{Port: last.Peer.Port + 100, ChaincodePort: last.Peer.ChaincodePort + 100, OperationsPort: last.Peer.OperationsPort + 100},
		ChaincodeServer: topology.Service{Port: last.ChaincodeServer.Port + 100},
		Registry:        topology.Registry{Port: last.Registry.Port + 1, OperationsPort: last.Registry.OperationsPort + 1}}
	return n
}

// signed has a proposal signed by the named NMIs' admins.
func signed(t *testing.T, p *governance.Proposal, err error, signers ...string) *governance.Proposal {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, nmi := range signers {
		admin, err := network.Admin(nmi)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Sign(admin); err != nil {
			t.Fatalf("%s signs: %v", nmi, err)
		}
	}
	return p
}

// TestConsortiumMembership: METAS joins the running consortium with the
// signatures of three founders (two are refused first), registers a meter
// through its own registry, which PTB's registry and the explorer see; then
// NMIM leaves by a majority-signed update and its meters still verify.
func TestConsortiumMembership(t *testing.T) {
	ctx := context.Background()
	network.Progress = testLog{t}
	defer func() { network.Progress = nil }()

	// NMIM enrols a meter while it is a member.
	nmimKey, _ := meter.GenerateKey(meter.P256)
	nmimMeter := uniqueID("NMIM-OLD")
	if _, err := registry(t, "NMIM", api.RoleOperator).RegisterMeter(ctx, proved(t, "NMIMMSP", nmimKey, meter.Registration{MeterID: nmimMeter,
		PublicKey: nmimKey.Public().PEM(), Metadata: meter.Metadata{Manufacturer: "SIRIM Meters", Model: "SM-1",
			SerialNumber: "SN-1", SoftwareID: "fw 1.0", SoftwareChecksum: "sha256:0123456789abcdef"}})); err != nil {
		t.Fatal(err)
	}

	// Every step as an operator takes it, through the CLI.
	// 1. METAS, on its own side: crypto material and its organisation definition.
	dir := t.TempDir()
	metasFile := filepath.Join(dir, "metas.yaml")
	b, err := yaml.Marshal(metas(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metasFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	defined := time.Now()
	mustOperate(t, "org", "define", metasFile)
	t.Logf("METAS generated its crypto material and organisation definition in %s", time.Since(defined).Round(time.Millisecond))
	reopen(t)
	metasNMI, err := network.Topology.NMI("METAS")
	if err != nil {
		t.Fatal(err)
	}
	orgFile := network.OrgDefinitionFile(metasNMI)
	began := time.Now()
	cfg, err := network.Config(ctx, "PTB")
	if err != nil {
		t.Fatal(err)
	}
	// 2. PTB proposes; 3. founders review and sign.
	add := filepath.Join(dir, "metas-add.tx")
	mustOperate(t, "update", "propose", "-as", "PTB", "-out", add, "add-org", "-nmi", "METAS", "-definition", orgFile)
	if out := mustOperate(t, "update", "sign", "-as", "CMI", add); !strings.Contains(out, "not yet") {
		t.Fatalf("two of five admins reported as enough:\n%s", out)
	}

	t.Run("two signatures are refused and change nothing", func(t *testing.T) {
		out, err := operator(t, "update", "submit", "-as", "PTB", add)
		if err == nil || !strings.Contains(out, "not submitted") {
			t.Fatalf("the CLI submitted a proposal with two signatures: %v\n%s", err, out)
		}
		// Sent past the CLI's own check, the orderer refuses it.
		proposal, err := governance.Load(add)
		if err != nil {
			t.Fatal(err)
		}
		err = network.Submit(ctx, proposal, "PTB")
		var refused *governance.BroadcastError
		if !errors.As(err, &refused) {
			t.Fatalf("submit with two signatures: %v", err)
		}
		t.Logf("refused as expected: %v", err)
		after, err := network.Config(ctx, "PTB")
		if err != nil {
			t.Fatal(err)
		}
		if after.GetSequence() != cfg.GetSequence() {
			t.Fatalf("configuration sequence moved from %d to %d", cfg.GetSequence(), after.GetSequence())
		}
	})

	t.Run("org join before the update is committed is refused", func(t *testing.T) {
		out, err := operator(t, "org", "join", "METAS")
		if err == nil || !strings.Contains(out, "not committed") {
			t.Fatalf("org join before the update: %v\n%s", err, out)
		}
	})

	if out := mustOperate(t, "update", "sign", "-as", "INMETRO", add); !strings.Contains(out, "met") {
		t.Fatalf("three of five admins not enough:\n%s", out)
	}
	// 4. Submitted, METAS's nodes join. Its peer crashes as the chaincode
	// definition counting it is approved: the join fails, and the same
	// command run again finishes it.
	mustOperate(t, "update", "submit", "-as", "PTB", add)
	t.Run("a join interrupted by a crash is finished by running it again", func(t *testing.T) {
		var killed int
		out, err := operatorWatching(t, func(line string) {
			if killed == 0 && strings.Contains(line, "chaincode definition counting METAS") && strings.HasSuffix(line, "...") {
				pid, err := network.Signal("METAS", consortium.NodePeer, syscall.SIGKILL)
				if err != nil {
					t.Errorf("kill METAS's peer: %v", err)
				}
				killed = pid
			}
		}, "org", "join", "METAS")
		if killed == 0 {
			t.Fatalf("the join never reached the chaincode definition:\n%s", out)
		}
		if err == nil {
			t.Fatalf("the join succeeded although METAS's peer (pid %d) was killed during the approval:\n%s", killed, out)
		}
		t.Logf("first attempt failed as it should, METAS's peer (pid %d) killed: %v", killed, err)
		resumed := time.Now()
		out = mustOperate(t, "org", "join", "METAS")
		for _, skipped := range []string{"approved sequence", "METAS joined"} {
			if !strings.Contains(out, skipped) {
				t.Fatalf("the second attempt does not say %q:\n%s", skipped, out)
			}
		}
		t.Logf("second attempt finished the join in %s", time.Since(resumed).Round(time.Millisecond))
	})
	reopen(t)
	refreshProfile(t)

	key, _ := meter.GenerateKey(meter.P256)
	id := uniqueID("METAS")
	reg, err := registry(t, "METAS", api.RoleOperator).RegisterMeter(ctx, proved(t, "METASMSP", key, meter.Registration{MeterID: id, PublicKey: key.Public().PEM(),
		Metadata: meter.Metadata{Manufacturer: "Landis", Model: "E450", SerialNumber: "SN-CH-1", SoftwareID: "fw 2.1",
			SoftwareChecksum: "sha256:0123456789abcdef"}}))
	if err != nil {
		t.Fatalf("METAS registers its first meter: %v", err)
	}
	t.Logf("METAS joined: from proposal to its first registration %s (block %d)", time.Since(began).Round(time.Millisecond), reg.Block)
	if reg.Meter.NMI != "METASMSP" {
		t.Fatalf("registered for %s", reg.Meter.NMI)
	}
	seen, err := registry(t, "PTB", api.RoleAuditor).GetMeter(ctx, id, regclient.Read{MinBlock: reg.Block})
	if err != nil || seen.NMI != "METASMSP" {
		t.Fatalf("PTB sees %+v %v", seen, err)
	}
	page := explorerPageWhen(t, "/meters/"+id, id)
	if !strings.Contains(page, "METASMSP") {
		t.Fatal("the explorer's page of METAS's meter does not name METASMSP")
	}
	if dash := explorerPageWhen(t, "/", "METASMSP"); !strings.Contains(dash, "METAS") {
		t.Fatal("the explorer's dashboard does not list METAS")
	}

	t.Run("METAS's orderer joins the consenter set and leaves it", func(t *testing.T) {
		ordererChange(t, ctx)
	})

	t.Run("a second definition of a member is refused and changes nothing", func(t *testing.T) {
		before, err := network.Config(ctx, "PTB")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		out, err := operator(t, "update", "propose", "-as", "CMI", "-out", filepath.Join(dir, "again.tx"), "add-org", "-nmi", "METAS2", "-definition", orgFile)
		if err == nil || !strings.Contains(out, "MSP ID already present") {
			t.Fatalf("proposing METASMSP twice: %v\n%s", err, out)
		}
		truncated := filepath.Join(dir, "truncated.json")
		b, _ := os.ReadFile(orgFile)
		if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		out, err = operator(t, "update", "propose", "-as", "CMI", "-out", filepath.Join(dir, "bad.tx"), "add-org", "-nmi", "SWISS", "-definition", truncated)
		if err == nil || !strings.Contains(out, "malformed definition") {
			t.Fatalf("proposing a truncated definition: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "bad.tx")); err == nil {
			t.Fatal("a refused proposal was written")
		}
		after, err := network.Config(ctx, "PTB")
		if err != nil {
			t.Fatal(err)
		}
		if after.GetSequence() != before.GetSequence() {
			t.Fatalf("configuration sequence moved from %d to %d", before.GetSequence(), after.GetSequence())
		}
	})

	// NMIM leaves through the operator CLI: PTB proposes, the others sign
	// until a majority of the six (four) have; PTB submits.
	leave := filepath.Join(t.TempDir(), "nmim-leave.tx")
	nmimRegistrar := identityOf(t, "NMIM", consortium.UserRegistrar)
	mustOperate(t, "update", "propose", "-as", "PTB", "-out", leave, "remove-org", "-nmi", "NMIM")
	mustOperate(t, "update", "sign", "-as", "CMI", leave)
	mustOperate(t, "update", "sign", "-as", "NMIJ", leave)
	t.Run("three of six signatures are not submitted", func(t *testing.T) {
		out, err := operator(t, "update", "submit", "-as", "PTB", leave)
		if err == nil || !strings.Contains(out, "not submitted") || !strings.Contains(out, "3 of 4 required: not yet") {
			t.Fatalf("submit with three of six: %v\n%s", err, out)
		}
	})
	mustOperate(t, "update", "sign", "-as", "METAS", leave)
	if out := mustOperate(t, "update", "status", "-via", "INMETRO", leave); !strings.Contains(out, "4 of 4 required: met") {
		t.Fatalf("four of six signatures not reported as enough:\n%s", out)
	}
	mustOperate(t, "update", "submit", "-as", "PTB", leave)
	t.Run("a leave interrupted mid-approval is finished by running it again", func(t *testing.T) {
		// The operator's command dies once the first NMI has approved the
		// definition without NMIM: some approvals are on the channel, others
		// not, and nothing is committed.
		var cmd *exec.Cmd
		killed := false
		out, err := operatorCmd(t, func(c *exec.Cmd) { cmd = c }, func(line string) {
			if strings.Contains(line, "approved sequence") && !killed {
				killed = cmd.Process.Kill() == nil
			}
		}, "org", "leave", "NMIM")
		if err == nil || !strings.Contains(out, "approved sequence") {
			t.Fatalf("the leave was not interrupted after an approval: %v\n%s", err, out)
		}
		t.Logf("first attempt killed after an approval: %v", err)
		out = mustOperate(t, "org", "leave", "NMIM")
		if !strings.Contains(out, "approved sequence") || !strings.Contains(out, "already") {
			t.Fatalf("the second attempt did not reuse the approval made before:\n%s", out)
		}
		out, err = operator(t, "org", "leave", "NMIM")
		if err == nil || !strings.Contains(out, "no longer in the run's topology") {
			t.Fatalf("a third leave: %v\n%s", err, out)
		}
	})
	reopen(t)
	refreshProfile(t)

	t.Run("a former member's meters still verify", func(t *testing.T) {
		r, err := registry(t, "PTB", api.RoleIngest).SubmitMeasurement(ctx, sign(t, nmimKey, nmimMeter, 1, time.Now().Add(-time.Minute)))
		if err != nil {
			t.Fatalf("a measurement of NMIM's meter: %v", err)
		}
		t.Logf("NMIM's meter %s accepted in block %d after NMIM left", nmimMeter, r.Block)
		if page := explorerPageWhen(t, "/meters/"+nmimMeter, "former member"); !strings.Contains(page, "NMIMMSP") {
			t.Fatal("the explorer does not name NMIM on its meter's page")
		}
	})

	t.Run("a majority of the remaining NMIs revokes the former member's meter", func(t *testing.T) {
		vote := func(nmi string) *api.VoteReceipt {
			t.Helper()
			r, err := registry(t, nmi, api.RoleOperator).Vote(ctx, api.VoteRequest{Action: api.ActionRevoke, MeterID: nmimMeter, Reason: "cessationOfOperation"})
			if err != nil {
				t.Fatalf("%s votes: %v", nmi, err)
			}
			return r
		}
		// Five members remain (PTB, CMI, INMETRO, NMIJ, METAS): three decide.
		if r := vote("PTB"); r.Tally.Applied || r.Tally.Needed != 3 || len(r.Tally.Voters) != 1 {
			t.Fatalf("PTB's vote: %+v", r.Tally)
		}
		vote("CMI")
		ingest := registry(t, "PTB", api.RoleIngest)
		if _, err := ingest.SubmitMeasurement(ctx, sign(t, nmimKey, nmimMeter, 2, time.Now().Add(-time.Minute))); err != nil {
			t.Fatalf("two votes of five revoked the meter already: %v", err)
		}
		decided := vote("INMETRO")
		if !decided.Tally.Applied || decided.Tally.Meter == nil || decided.Tally.Meter.Status != meter.StatusRevoked {
			t.Fatalf("the third vote: %+v", decided.Tally)
		}
		t.Logf("NMIM's meter revoked by %v in block %d", decided.Tally.Voters, decided.Block)
		// The ledger, not the registry's answer: read through another NMI's peer.
		m, err := registry(t, "NMIJ", api.RoleAuditor).GetMeter(ctx, nmimMeter, regclient.Read{MinBlock: decided.Block})
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != meter.StatusRevoked || m.NMI != "NMIMMSP" || m.Revocation == nil ||
			!slices.Equal(m.Revocation.DecidedBy, []string{"CMIMSP", "INMETROMSP", "PTBMSP"}) {
			t.Fatalf("the ledger holds %+v, revocation %+v", m, m.Revocation)
		}
		_, err = ingest.SubmitMeasurement(ctx, sign(t, nmimKey, nmimMeter, 3, time.Now().Add(-time.Minute)))
		wantProblem(t, err, http.StatusConflict, string(meter.CodeMeterRevoked))
	})

	t.Run("the former member registers nothing", func(t *testing.T) {
		ptb, err := profile.NMI("PTB")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := gateway.Dial(ptb.Peer, nmimRegistrar, gateway.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		contract := conn.GetNetwork(profile.Channel).GetContract(profile.Chaincode)
		k, _ := meter.GenerateKey(meter.P256)
		_, err = contract.Submit("RegisterMeter", client.WithArguments(registration(t, "NMIMMSP", uniqueID("NMIM-NEW"), k)))
		if err == nil {
			t.Fatal("a former member's registrar registered a meter")
		}
		if !strings.Contains(err.Error(), "creator org unknown") {
			t.Fatalf("refused for another reason: %v", err)
		}
		t.Logf("refused as expected: access denied, creator org unknown")
	})
}

// ordererChange adds METAS's orderer as a fifth consenter (three of the
// four ordering NMIs sign), checks the consortium commits with it and the
// explorer still finds the chain intact, then removes it again.
func ordererChange(t *testing.T, ctx context.Context) {
	metasNMI, err := network.Topology.NMI("METAS")
	if err != nil {
		t.Fatal(err)
	}
	p := metasNMI.Peer.Port
	consenter, err := network.DefineOrderer("METAS", topology.Orderer{Port: p - 1, AdminPort: p + 3, OperationsPort: p + 4})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := network.Config(ctx, "PTB")
	if err != nil {
		t.Fatal(err)
	}
	add, err := governance.AddConsenter(cfg, network.Topology.Channel, "METAS", nil, consenter)
	proposal := signed(t, add, err, "PTB", "CMI", "INMETRO")
	t.Logf("consenter proposal:\n%s", proposal.Status(cfg))
	began := time.Now()
	if err := network.Submit(ctx, proposal, "PTB"); err != nil {
		t.Fatalf("add METAS's orderer: %v", err)
	}
	if err := network.JoinOrderer(ctx, "METAS"); err != nil {
		t.Fatal(err)
	}
	ptb := connect(t, "PTB", consortium.UserRegistrar)
	var last uint64
	for range 3 {
		k, _ := meter.GenerateKey(meter.P256)
		last = ptb.submit(t, "RegisterMeter", registration(t, "PTBMSP", uniqueID("PTB-5C"), k)).block
	}
	t.Logf("five consenters: METAS's orderer joined and three registrations committed in %s (last block %d)", time.Since(began).Round(time.Millisecond), last)
	if dash := explorerPageWhen(t, "/", intactThrough(last)); !strings.Contains(dash, "orderer0.metas.nmi.test") {
		t.Fatal("the explorer's dashboard does not list METAS's orderer among the consenters")
	}

	cfg, err = network.Config(ctx, "PTB")
	if err != nil {
		t.Fatal(err)
	}
	remove, err := governance.RemoveConsenter(cfg, network.Topology.Channel, 5)
	proposal = signed(t, remove, err, "PTB", "CMI", "INMETRO")
	if err := network.Submit(ctx, proposal, "PTB"); err != nil {
		t.Fatalf("remove METAS's orderer: %v", err)
	}
	if err := network.RetireOrderer(ctx, "METAS"); err != nil {
		t.Fatal(err)
	}
	k, _ := meter.GenerateKey(meter.P256)
	last = ptb.submit(t, "RegisterMeter", registration(t, "PTBMSP", uniqueID("PTB-4C"), k)).block
	if dash := explorerPageWhen(t, "/", intactThrough(last)); strings.Contains(dash, "orderer0.metas.nmi.test") {
		t.Fatal("the explorer's dashboard still lists METAS's retired orderer")
	}
	t.Logf("back to four consenters, block %d committed, chain intact", last)
}

// intactThrough is the dashboard's integrity verdict once the explorer has
// verified the chain through a block.
func intactThrough(block uint64) string {
	return fmt.Sprintf(`intact through block <a href="/blocks/%d">%d</a>`, block, block)
}

// testLog shows the network's progress lines in the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// operator runs the operator CLI against the test's consortium and returns
// its output.
func operator(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return operatorCmd(t, nil, nil, args...)
}

// operatorWatching runs the operator CLI and hands each line of its output
// to watch as it is written, so a test can act at a given step.
func operatorWatching(t *testing.T, watch func(line string), args ...string) (string, error) {
	t.Helper()
	return operatorCmd(t, nil, watch, args...)
}

func operatorCmd(t *testing.T, started func(*exec.Cmd), watch func(line string), args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(network.Bin, "consortium"), append([]string{"-run", network.Root}, args...)...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if started != nil {
		started(cmd)
	}
	var out strings.Builder
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if watch != nil {
			watch(lines.Text())
		}
	}
	r.Close()
	err = cmd.Wait()
	t.Logf("consortium %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func mustOperate(t *testing.T, args ...string) string {
	t.Helper()
	out, err := operator(t, args...)
	if err != nil {
		t.Fatalf("consortium %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// reopen rereads the network from its run directory after the operator CLI
// changed it.
func reopen(t *testing.T) {
	t.Helper()
	nw, err := consortium.Open(network.Root)
	if err != nil {
		t.Fatal(err)
	}
	nw.Progress = network.Progress
	network = nw
}

// identityOf is one of an NMI's identities as the network profile gives it.
func identityOf(t *testing.T, nmi, user string) gateway.Identity {
	t.Helper()
	np, err := profile.NMI(nmi)
	if err != nil {
		t.Fatal(err)
	}
	return np.Users[user]
}

// refreshProfile rereads the network profile after the membership changed,
// and stops watching the peers of NMIs that left.
// explorerSession signs in to the explorer as market surveillance and
// returns the signed-in client and the explorer's address.
func explorerSession(t *testing.T) (*http.Client, string) {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(network.SurveillanceCredentialsDir(), "auditor.token"))
	if err != nil {
		t.Fatal(err)
	}
	host := consortium.ExplorerHost(network.Topology)
	hc := httpsClient(t, network.TLSCACert(host))
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	base := consortium.ExplorerURL(network.Topology)
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"token": {strings.TrimSpace(string(token))}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return hc, base
}

func refreshProfile(t *testing.T) {
	t.Helper()
	p, err := consortium.LoadProfile(network.ProfileFile())
	if err != nil {
		t.Fatal(err)
	}
	profile = p
	for name, conn := range watchers {
		if _, err := profile.NMI(name); err != nil {
			conn.Close()
			delete(watchers, name)
		}
	}
}

// explorerPageWhen signs in to the explorer as market surveillance and
// reads a page until it shows want: the explorer indexes blocks as they
// arrive, a moment after the peers commit them.
func explorerPageWhen(t *testing.T, path, want string) string {
	t.Helper()
	hc, base := explorerSession(t)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the explorer's %s did not show %q within 30s (last status %d)", path, want, resp.StatusCode)
		}
		<-tick.C
	}
}
