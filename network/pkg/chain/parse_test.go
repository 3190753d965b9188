package chain

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// The five NMIs of the consortium.
var nmis = []string{"CMIMSP", "INMETROMSP", "NMIJMSP", "NMIMMSP", "PTBMSP"}

// find returns the transactions of the chain that match.
func find(chain []*Block, match func(*Tx) bool) []*Tx {
	var out []*Tx
	for _, b := range chain {
		for i := range b.Txs {
			if match(&b.Txs[i]) {
				out = append(out, &b.Txs[i])
			}
		}
	}
	return out
}

func TestParseHeaders(t *testing.T) {
	chain := parsedChain(t)
	for n, b := range chain {
		if b.Number != uint64(n) {
			t.Errorf("block %d: Number = %d", n, b.Number)
		}
		if len(b.HeaderHash) != 32 || len(b.DataHash) != 32 {
			t.Errorf("block %d: header hash %x, data hash %x", n, b.HeaderHash, b.DataHash)
		}
		if n > 0 && !bytes.Equal(b.PreviousHash, chain[n-1].HeaderHash) {
			t.Errorf("block %d: PreviousHash %x, block %d hashes to %x", n, b.PreviousHash, n-1, chain[n-1].HeaderHash)
		}
		if b.Size != len(rawBlocks(t)[n]) {
			t.Errorf("block %d: Size = %d, the file has %d bytes", n, b.Size, len(rawBlocks(t)[n]))
		}
		if len(b.Txs) == 0 || !b.Time.Equal(b.Txs[0].Time) || b.Time.IsZero() {
			t.Errorf("block %d: Time %v, %d transactions", n, b.Time, len(b.Txs))
		}
		if n > 0 && (len(b.Signatures) != 3 || len(b.CommitHash) != 32) {
			t.Errorf("block %d: %d signatures, commit hash %x", n, len(b.Signatures), b.CommitHash)
		}
		for i, s := range b.Signatures {
			if s.ConsenterID == 0 || s.Valid {
				t.Errorf("block %d signature %d as parsed: %+v; want a consenter ID, not yet valid", n, i, s)
			}
		}
	}
}

func TestParseGenesis(t *testing.T) {
	b := parsedChain(t)[0]
	if !b.Config || len(b.Signatures) != 0 || len(b.Txs) != 1 {
		t.Fatalf("block 0: config %v, %d signatures, %d txs; want a config block, unsigned, one tx", b.Config, len(b.Signatures), len(b.Txs))
	}
	tx := b.Txs[0]
	if tx.Type != "CONFIG" || !tx.Valid() || tx.Chaincode != "" || tx.Function != "" || len(tx.Writes) != 0 {
		t.Fatalf("genesis tx: %+v", tx)
	}
	for _, b := range parsedChain(t)[1:] {
		if b.Config {
			t.Errorf("block %d is a config block", b.Number)
		}
	}
}

func TestParseLifecycle(t *testing.T) {
	chain := parsedChain(t)
	approvals := find(chain, func(tx *Tx) bool {
		return tx.Chaincode == "_lifecycle" && tx.Function == "ApproveChaincodeDefinitionForMyOrg"
	})
	var approvers []string
	for _, tx := range approvals {
		if !tx.Valid() || len(tx.Endorsers) != 1 || tx.Endorsers[0] != tx.CreatorMSP || len(tx.Args) != 1 {
			t.Errorf("approval %s: %+v", tx.ID, tx)
		}
		if !strings.HasPrefix(tx.CreatorSubject, "CN=Admin@") {
			t.Errorf("approval %s submitted by %s, want an admin", tx.ID, tx.CreatorSubject)
		}
		approvers = append(approvers, tx.CreatorMSP)
	}
	slices.Sort(approvers)
	if !slices.Equal(approvers, nmis) {
		t.Errorf("approved by %v, want each of %v once", approvers, nmis)
	}

	commits := find(chain, func(tx *Tx) bool { return tx.Function == "CommitChaincodeDefinition" })
	if len(commits) != 1 {
		t.Fatalf("%d commits of a chaincode definition, want 1", len(commits))
	}
	commit := commits[0]
	endorsers := slices.Sorted(slices.Values(commit.Endorsers))
	if !commit.Valid() || commit.Chaincode != "_lifecycle" || !slices.Equal(endorsers, nmis) {
		t.Errorf("commit: chaincode %s, code %s, endorsers %v", commit.Chaincode, commit.Code, commit.Endorsers)
	}
	if !slices.ContainsFunc(commit.Writes, func(w Write) bool {
		return w.Namespace == "_lifecycle" && w.Key == "namespaces/fields/pki/Sequence"
	}) {
		t.Errorf("commit writes %v, want the pki chaincode's sequence", commit.Writes)
	}
	// Every later invocation of pki reads the definition this commit wrote.
	for _, tx := range find(chain, func(tx *Tx) bool { return tx.Chaincode == "pki" }) {
		if !slices.Contains(tx.Reads, Read{Namespace: "_lifecycle", Key: "namespaces/fields/pki/Sequence", Block: 4, Tx: 0}) {
			t.Errorf("pki tx %s reads %v, want the definition committed in block 4", tx.ID, tx.Reads)
		}
	}
}

func TestParseRegisterMeter(t *testing.T) {
	regs := find(parsedChain(t), func(tx *Tx) bool {
		return tx.Chaincode == "pki" && tx.Function == "RegisterMeter" && tx.CreatorMSP == "PTBMSP"
	})
	if len(regs) == 0 {
		t.Fatal("no RegisterMeter by PTBMSP")
	}
	for _, tx := range regs {
		if tx.CreatorRole != wire.RoleRegistrar || !strings.HasPrefix(tx.CreatorSubject, "CN=registrar@ptb.nmi.test") {
			t.Errorf("%s: submitted by %s with role %q", tx.ID, tx.CreatorSubject, tx.CreatorRole)
		}
		if distinct := len(slices.Compact(slices.Sorted(slices.Values(tx.Endorsers)))); distinct < 2 {
			t.Errorf("%s: endorsed by %v, want two distinct NMIs", tx.ID, tx.Endorsers)
		}
		if !tx.Valid() || tx.ResponseStatus != 200 {
			t.Errorf("%s: code %s, response status %d", tx.ID, tx.Code, tx.ResponseStatus)
		}
		var reg meter.Registration
		if len(tx.Args) != 1 || json.Unmarshal([]byte(tx.Args[0]), &reg) != nil {
			t.Fatalf("%s: args %v, want one registration", tx.ID, tx.Args)
		}
		key := "meter/" + reg.MeterID
		i := slices.IndexFunc(tx.Writes, func(w Write) bool { return w.Namespace == "pki" && w.Key == key })
		if i < 0 {
			t.Fatalf("%s: no write of %s in %v", tx.ID, key, tx.Writes)
		}
		dec := json.NewDecoder(bytes.NewReader(tx.Writes[i].Value))
		dec.DisallowUnknownFields()
		var m meter.Meter
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %s does not decode as meter.Meter: %v", tx.ID, key, err)
		}
		if m.ID != reg.MeterID || m.NMI != "PTBMSP" || m.Status != meter.StatusActive || m.KeyVersion != 1 || m.RegisteredTx != tx.ID {
			t.Errorf("%s: meter record %+v", tx.ID, m)
		}
		// The owner's key-level endorsement policy guards the record.
		if !slices.ContainsFunc(tx.MetadataWrites, func(w MetadataWrite) bool {
			return w.Key == key && len(w.Entries) == 1 && w.Entries[0].Name == "VALIDATION_PARAMETER"
		}) {
			t.Errorf("%s: metadata writes %v, want the key-level policy of %s", tx.ID, tx.MetadataWrites, key)
		}
		var ev wire.Enrolment
		if len(tx.Events) != 1 || tx.Events[0].Name != wire.EventMeterRegistered || json.Unmarshal(tx.Events[0].Payload, &ev) != nil ||
			!slices.Equal(ev.MeterIDs, []string{reg.MeterID}) {
			t.Errorf("%s: events %v", tx.ID, tx.Events)
		}
		if !slices.Contains(tx.Reads, Read{Namespace: "pki", Key: key, Absent: true}) {
			t.Errorf("%s: reads %v, want %s read as absent", tx.ID, tx.Reads, key)
		}
	}
}

func TestParseSubmitMeasurementsWithRejections(t *testing.T) {
	batches := find(parsedChain(t), func(tx *Tx) bool { return tx.Function == "SubmitMeasurements" })
	if len(batches) == 0 {
		t.Fatal("no SubmitMeasurements")
	}
	tx := batches[0]
	if !tx.Valid() || tx.CreatorRole != wire.RoleIngest {
		t.Errorf("batch %s: code %s, role %q", tx.ID, tx.Code, tx.CreatorRole)
	}
	var rejections []meter.Rejection
	for _, w := range tx.Writes {
		if !strings.HasPrefix(w.Key, "rej/") {
			continue
		}
		if !strings.Contains(w.Key, "/"+tx.ID+"/") {
			t.Errorf("rejection key %s does not name its transaction %s", w.Key, tx.ID)
		}
		var r meter.Rejection
		if err := json.Unmarshal(w.Value, &r); err != nil {
			t.Fatalf("rejection %s: %v", w.Key, err)
		}
		rejections = append(rejections, r)
	}
	if len(rejections) != 2 {
		t.Fatalf("%d rejections written, want 2", len(rejections))
	}
	codes := []meter.Code{rejections[0].Code, rejections[1].Code}
	if !slices.Equal(codes, []meter.Code{meter.CodeBadSignature, meter.CodeReplay}) {
		t.Errorf("rejection codes %v", codes)
	}
	var res meter.BatchResult
	if len(tx.Events) != 1 || tx.Events[0].Name != wire.EventMeasurementsSubmitted || json.Unmarshal(tx.Events[0].Payload, &res) != nil ||
		res.Accepted != 1 || res.Rejected != 2 {
		t.Errorf("events %v", tx.Events)
	}
}

func TestParseEndorsementPolicyFailure(t *testing.T) {
	chain := parsedChain(t)
	invalid := find(chain, func(tx *Tx) bool { return !tx.Valid() })
	if len(invalid) != 1 {
		t.Fatalf("%d invalid transactions, want 1", len(invalid))
	}
	tx := invalid[0]
	if tx.Code != "ENDORSEMENT_POLICY_FAILURE" || tx.Function != "RevokeMeter" || tx.Problem != "" {
		t.Fatalf("invalid tx: code %s, function %s, problem %q", tx.Code, tx.Function, tx.Problem)
	}
	// The meter is PTB's; its key-level policy wants PTB's endorsement,
	// which this revocation lacks.
	if slices.Contains(tx.Endorsers, "PTBMSP") || !strings.HasPrefix(tx.Args[0], "PTB-") {
		t.Errorf("revocation of %s endorsed by %v", tx.Args[0], tx.Endorsers)
	}
	if chain[12].Txs[0].ID != tx.ID {
		t.Errorf("the invalid tx is not block 12's")
	}
}

func TestParseEventNames(t *testing.T) {
	var names []string
	for _, tx := range find(parsedChain(t), func(*Tx) bool { return true }) {
		for _, e := range tx.Events {
			names = append(names, e.Name)
		}
	}
	want := []string{
		wire.EventMeterRegistered, wire.EventMeasurementAccepted, wire.EventMeasurementsSubmitted,
		wire.EventKeyRotated, wire.EventMeasurementAccepted, wire.EventMeterRevoked,
		wire.EventMeterRegistered, wire.EventMeterRevoked,
	}
	if !slices.Equal(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
}

func TestParseBytesMatchesParse(t *testing.T) {
	raw := rawBlocks(t)[5]
	got, err := ParseBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := parsedChain(t)[5]
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("ParseBytes and Parse differ")
	}
}

// txOf returns the decoded parts of a block's first transaction, to tamper with.
func txOf(t testing.TB, b *common.Block) (*common.Envelope, *common.Payload) {
	t.Helper()
	var env common.Envelope
	var payload common.Payload
	if err := proto.Unmarshal(b.Data.Data[0], &env); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	return &env, &payload
}

func setTx(t testing.TB, b *common.Block, env *common.Envelope, payload *common.Payload) {
	t.Helper()
	var err error
	if env.Payload, err = proto.Marshal(payload); err != nil {
		t.Fatal(err)
	}
	if b.Data.Data[0], err = proto.Marshal(env); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*testing.T, *common.Block) // of block 5
		want   string                          // in the error; "" for no error
		// problem is expected in Tx.Problem when the error is recorded there.
		problem string
	}{
		{"no header", func(_ *testing.T, b *common.Block) { b.Header = nil }, "no header", ""},
		{"validation codes missing", func(_ *testing.T, b *common.Block) {
			b.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER] = nil
		}, "block 5: 0 validation codes for 1 transactions", ""},
		{"no metadata at all", func(_ *testing.T, b *common.Block) { b.Metadata = nil }, "block 5: 0 validation codes", ""},
		{"valid tx not an envelope", func(_ *testing.T, b *common.Block) { b.Data.Data[0] = []byte{0xff, 0xff} },
			"block 5 tx 0: envelope", ""},
		{"valid tx with garbled transaction", func(t *testing.T, b *common.Block) {
			env, payload := txOf(t, b)
			payload.Data = []byte("not a transaction")
			setTx(t, b, env, payload)
		}, "block 5 tx 0 (df757cf49875eb9c9c45a29300348fdf9b3b51f309cc840c623e87b86cf1c60a): transaction", ""},
		{"valid tx with two actions", func(t *testing.T, b *common.Block) {
			env, payload := txOf(t, b)
			var tx peer.Transaction
			if err := proto.Unmarshal(payload.Data, &tx); err != nil {
				t.Fatal(err)
			}
			tx.Actions = append(tx.Actions, tx.Actions[0])
			payload.Data, _ = proto.Marshal(&tx)
			setTx(t, b, env, payload)
		}, "transaction has 2 actions, want 1", ""},
		{"refused tx with garbled transaction", func(t *testing.T, b *common.Block) {
			env, payload := txOf(t, b)
			payload.Data = []byte("not a transaction")
			setTx(t, b, env, payload)
			b.Metadata.Metadata[common.BlockMetadataIndex_TRANSACTIONS_FILTER][0] = byte(peer.TxValidationCode_BAD_PAYLOAD)
		}, "", "transaction: "},
		{"garbled signatures are left to the verifier", func(_ *testing.T, b *common.Block) {
			b.Metadata.Metadata[common.BlockMetadataIndex_SIGNATURES] = []byte{0xff}
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := realChain(t)[5]
			tt.tamper(t, b)
			got, err := Parse(b)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Parse: %v, want an error with %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := got.Txs[0].Problem; !strings.Contains(p, tt.problem) || (tt.problem == "") != (p == "") {
				t.Errorf("Problem = %q, want %q", p, tt.problem)
			}
		})
	}
	if _, err := Parse(nil); err == nil {
		t.Error("Parse(nil) succeeded")
	}
	if _, err := ParseBytes([]byte("not a block")); err == nil {
		t.Error("ParseBytes(garbage) succeeded")
	}
}

func TestArgsForDisplay(t *testing.T) {
	long := strings.Repeat("a", MaxDisplayArg+10)
	accented := strings.Repeat("a", MaxDisplayArg-1) + "é" + "tail" // é straddles the cut
	binary := string(bytes.Repeat([]byte{0, 1, 2, 0xfe}, 64))
	tests := []struct {
		arg, want string
	}{
		{"", ""},
		{"PTB-E2E-1", "PTB-E2E-1"},
		{"line\nbreak\ttab", "line\nbreak\ttab"},
		{strings.Repeat("b", MaxDisplayArg), strings.Repeat("b", MaxDisplayArg)},
		{long, strings.Repeat("a", MaxDisplayArg) + "… (266 bytes)"},
		{accented, strings.Repeat("a", MaxDisplayArg-1) + "… (261 bytes)"},
		{"\x08\x01\x12\x03pki", "0x08011203706b69"},
		{binary, "0x" + strings.Repeat("000102fe", 32) + "… (256 bytes)"},
	}
	args := make([]string, len(tests))
	for i, tt := range tests {
		args[i] = tt.arg
	}
	got := (&Tx{Args: args}).ArgsForDisplay()
	for i, tt := range tests {
		if got[i] != tt.want {
			t.Errorf("arg %d: got %q, want %q", i, got[i], tt.want)
		}
	}
}

// TestParseProcessed: a transaction fetched alone (qscc GetTransactionByID)
// parses to what the same transaction in its block parses to.
func TestParseProcessed(t *testing.T) {
	raws := rawBlocks(t)
	checked := 0
	for n, b := range parsedChain(t) {
		var block common.Block
		if err := proto.Unmarshal(raws[n], &block); err != nil {
			t.Fatal(err)
		}
		for i, want := range b.Txs {
			var env common.Envelope
			if err := proto.Unmarshal(block.GetData().GetData()[i], &env); err != nil {
				t.Fatal(err)
			}
			code := peer.TxValidationCode_value[want.Code]
			data, err := proto.Marshal(&peer.ProcessedTransaction{TransactionEnvelope: &env, ValidationCode: code})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseProcessed(data)
			if err != nil {
				t.Fatalf("block %d tx %d: %v", n, i, err)
			}
			got.Index = want.Index
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) {
				t.Errorf("block %d tx %d alone:\n%s\nin its block:\n%s", n, i, g, w)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d transactions checked", checked)
	}
	if _, err := ParseProcessed([]byte{0xff, 0x01}); err == nil {
		t.Error("garbage parsed")
	}
}
