package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// testdata is the chaincode's openssl-made fixtures.
const testdata = "../../testdata"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call is one request the server made of the ledger.
type call struct {
	Method string // SubmitAll, Settle, Status, Evaluate, AwaitBlock, Consortium or Ready
	Role   api.Role
	Tx     string
	Args   []string
	Parts  [][]string
	Block  uint64
}

// answer is the chaincode's side of a transaction: its result (marshalled to
// JSON) or its error.
type answer func(ctx context.Context, args []string) (any, error)

func returns(v any) answer   { return func(context.Context, []string) (any, error) { return v, nil } }
func fails(err error) answer { return func(context.Context, []string) (any, error) { return nil, err } }

// fakeLedger stands in for the Fabric gateway: it records every call and
// answers by transaction name (or by method name for AwaitBlock, Consortium
// and Ready).
type fakeLedger struct {
	mu      sync.Mutex
	calls   []call
	answers map[string]answer
	// submitAll, when set, replaces the part-by-part answers of SubmitAll.
	submitAll func(parts [][]string) ([]*ledger.Receipt, error)
	// gate, when set, holds the next Submit until it is closed; entered
	// receives a value as that Submit arrives at the gate. Later Submits
	// pass, so a duplicate that should have been refused cannot hang a test.
	gate    chan struct{}
	entered chan struct{}
	txs     int
	// ordered counts the transactions SubmitAll handed over after their
	// record (nothing is sent when the record fails).
	ordered int
	// lose, when positive, makes that many submissions end with their
	// outcome unknown (the transaction was sent; its answer was lost).
	lose int
	// height, when set, is the peer's height; else the fixture's index is
	// taken as caught up with the peer.
	height func() uint64
	// readOnly names the transactions whose endorsement writes nothing (a
	// repeated request): answered from the endorsement, never ordered.
	readOnly map[string]bool
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{readOnly: map[string]bool{}, answers: map[string]answer{
		"RegisterMeter": func(_ context.Context, args []string) (any, error) {
			var reg meter.Registration
			if err := json.Unmarshal([]byte(args[0]), &reg); err != nil {
				return nil, err
			}
			return meterRecord(reg.MeterID, reg.PublicKey), nil
		},
		"RegisterMeters": func(_ context.Context, args []string) (any, error) {
			var regs []meter.Registration
			if err := json.Unmarshal([]byte(args[0]), &regs); err != nil {
				return nil, err
			}
			e := wire.Enrolment{NMI: "PTB", MeterIDs: []string{}}
			for _, r := range regs {
				e.MeterIDs = append(e.MeterIDs, r.MeterID)
			}
			return e, nil
		},
		"PreEnrollMeter": func(_ context.Context, args []string) (any, error) {
			return meter.PreEnrolment{MeterID: args[0], NMI: "PTB", IdentityHash: args[1], TxID: "tx-pre", At: "2026-11-21T10:20:00Z", ExpiresAt: "2027-05-20T10:20:00Z"}, nil
		},
		"RotateKey": func(_ context.Context, args []string) (any, error) {
			m := meterRecord(args[0], args[1])
			m.KeyVersion = 2
			return m, nil
		},
		"RevokeMeter": func(_ context.Context, args []string) (any, error) {
			m := meterRecord(args[0], "")
			m.Status = meter.StatusRevoked
			m.Revocation = &meter.Revocation{Reason: meter.Reason(args[1]), RevokedAt: "2026-11-21T10:20:00Z", InvalidityDate: args[2], TxID: "tx-revoke"}
			return m, nil
		},
		"WithdrawPreEnrolment": func(_ context.Context, args []string) (any, error) {
			return meter.PreEnrolment{MeterID: args[0], NMI: "PTB", IdentityHash: meter.IdentityHash("id"), TxID: "tx-pre", At: "2026-11-21T10:20:00Z", ExpiresAt: "2027-05-20T10:20:00Z"}, nil
		},
		"VoteConsortium": func(_ context.Context, args []string) (any, error) {
			return wire.Tally{Action: args[0], MeterID: args[1], Voters: []string{"PTBMSP"}, Needed: 3}, nil
		},
		"AttestMeter": func(_ context.Context, args []string) (any, error) {
			return map[string]any{"type": "meterAttestation", "meter": meterRecord(args[0], "")}, nil
		},
		"GetVotes": func(_ context.Context, args []string) (any, error) {
			return []wire.Vote{{Action: args[0], MeterID: args[1], Voter: "PTBMSP", Reason: "cessationOfOperation", TxID: "tx-vote", At: "2026-11-21T10:20:00Z"}}, nil
		},
		"ReinstateMeter": func(_ context.Context, args []string) (any, error) { return meterRecord(args[0], ""), nil },
		"GetMeter":       func(_ context.Context, args []string) (any, error) { return meterRecord(args[0], ""), nil },
		"GetMeterHistory": func(_ context.Context, args []string) (any, error) {
			return []api.MeterVersion{{TxID: "tx-reg", Time: "2026-11-21T10:20:00Z", Meter: meterRecord(args[0], "")}}, nil
		},
		"GetMeterKeys": func(_ context.Context, args []string) (any, error) {
			m := meterRecord(args[0], "")
			return []meter.KeyVersion{{MeterID: m.ID, Version: 1, PublicKey: m.PublicKey, Curve: m.Curve,
				Fingerprint: m.Fingerprint, ValidFrom: m.RegisteredAt, TxID: m.RegisteredTx}}, nil
		},
		"GetPreEnrolment": func(_ context.Context, args []string) (any, error) {
			return meter.PreEnrolment{MeterID: args[0], NMI: "PTB", IdentityHash: meter.IdentityHash("id"), TxID: "tx-pre", At: "2026-11-21T10:20:00Z", ExpiresAt: "2027-05-20T10:20:00Z"}, nil
		},
		"ListMeters": returns(wire.MeterPage{Meters: []*meter.Meter{meterRecord("PTB-0001", "")}}),
		"SubmitMeasurement": func(_ context.Context, args []string) (any, error) {
			m, err := measurementOf(args[1])
			if err != nil {
				return nil, err
			}
			return meter.ItemResult{MeterID: args[0], Seq: m.Seq, KeyVersion: 1, Outcome: meter.OutcomeAccepted}, nil
		},
		"SubmitMeasurementsPacked": func(_ context.Context, args []string) (any, error) {
			items, err := wire.Unpack([]byte(args[0]))
			if err != nil {
				return nil, err
			}
			out := wire.Outcome{TxID: "tx-batch", Items: len(items), KeyVersions: map[string]int{}}
			for i, sm := range items {
				if _, err := meter.ParseMeasurement(sm.Payload); err != nil {
					out.Rejected++
					out.Exceptions = append(out.Exceptions, meter.ItemResult{Index: i, MeterID: sm.MeterID, Outcome: meter.OutcomeRejected,
						Code: meter.CodeOf(err), Reason: err.Error()})
					continue
				}
				out.Accepted++
				out.KeyVersions[sm.MeterID] = 1
			}
			return out, nil
		},
		"VerifyMeasurement": func(_ context.Context, args []string) (any, error) {
			m, err := measurementOf(args[1])
			if err != nil {
				return meter.Verification{MeterID: args[0], Code: meter.CodeOf(err), Reason: err.Error()}, nil
			}
			return meter.Verification{Valid: true, MeterID: args[0], Seq: m.Seq, KeyVersion: 1}, nil
		},
		"RecordMeterType": func(_ context.Context, args []string) (any, error) {
			var req meter.TypeRecord
			if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
				return nil, err
			}
			mt := meterType(req.TypeID)
			mt.Manufacturer, mt.Model, mt.Certificate, mt.Versions = req.Manufacturer, req.Model, req.Certificate, nil
			for _, v := range req.Versions {
				mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: v.Software, ApprovedFrom: "2026-11-21T10:20:00Z",
					ApprovedTx: "tx-type", ApprovedAt: "2026-11-21T10:20:00Z"})
			}
			return mt, nil
		},
		"ApproveSoftware": func(_ context.Context, args []string) (any, error) {
			mt := meterType(args[0])
			mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: meter.Software{ID: args[1], Checksum: args[2]},
				ApprovedFrom: "2026-12-01T00:00:00Z", ApprovedTx: "tx-approve", ApprovedAt: "2026-11-22T10:20:00Z"})
			return mt, nil
		},
		"WithdrawSoftware": func(_ context.Context, args []string) (any, error) {
			mt := meterType(args[0])
			mt.Versions[0].Withdrawal = &meter.Withdrawal{Reason: args[2], From: "2026-11-30T00:00:00Z", TxID: "tx-withdraw", At: "2026-11-30T10:20:00Z"}
			return mt, nil
		},
		"AssignMeterType": func(_ context.Context, args []string) (any, error) {
			m := meterRecord(args[0], "")
			m.TypeID = args[1]
			return m, nil
		},
		"SubmitSoftwareUpdate": func(_ context.Context, args []string) (any, error) {
			su, err := meter.SignedUpdateFromBase64(args[0], args[1], args[2])
			if err != nil {
				return nil, err
			}
			out := meter.UpdateOutcome{MeterID: args[0], TxID: "tx-update"}
			st, err := meter.ParseStatement(su.Statement)
			if err != nil {
				out.Outcome, out.Code, out.Reason = meter.UpdateRefused, meter.CodeOf(err), err.Error()
				return out, nil
			}
			out.Outcome, out.Report = meter.UpdateAccepted, updateReport(st, args[1], args[2])
			return out, nil
		},
		"GetMeterType": func(_ context.Context, args []string) (any, error) { return meterType(args[0]), nil },
		"GetMeterTypeHistory": func(_ context.Context, args []string) (any, error) {
			return []wire.TypeVersion{{TxID: "tx-type", Time: "2026-11-21T10:20:00Z", Type: meterType(args[0])}}, nil
		},
		"ListMeterTypes": returns(wire.TypePage{Types: []*meter.MeterType{meterType("PTB-E350")}}),
		"ListTypeMeters": func(_ context.Context, args []string) (any, error) {
			m := meterRecord("PTB-0001", "")
			m.TypeID = args[0]
			return wire.MeterPage{Meters: []*meter.Meter{m}}, nil
		},
		"GetSoftwareLog": returns([]*meter.UpdateReport{}),
		"billing:BindPeriod": func(_ context.Context, args []string) (any, error) {
			var req api.BillingPeriodRequest
			if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
				return nil, err
			}
			return agreement.Record{Period: req.Statement, CustomerKey: req.CustomerKey, CustomerSignature: req.CustomerSignature, PeriodTx: "tx-bind"}, nil
		},
		"billing:AgreeTariff": func(_ context.Context, args []string) (any, error) {
			var req api.TariffAgreementRequest
			if err := json.Unmarshal([]byte(args[2]), &req); err != nil {
				return nil, err
			}
			rec := billingRecord(args[0], args[1])
			rec.Tariff = &agreement.TariffRecord{TariffSHA256: req.Statement.TariffSHA256, UtilityKey: req.UtilityKey,
				CustomerSignature: req.CustomerSignature, UtilitySignature: req.UtilitySignature, TxID: "tx-tariff", At: "2026-11-21T10:21:00Z"}
			return rec, nil
		},
		"billing:RecordKeyIssued": func(_ context.Context, args []string) (any, error) {
			var req api.KeyIssuedRequest
			if err := json.Unmarshal([]byte(args[2]), &req); err != nil {
				return nil, err
			}
			rec := billingRecord(args[0], args[1])
			rec.Key = &agreement.KeyRecord{TariffSHA256: req.Statement.TariffSHA256, CustomerSignature: req.CustomerSignature, TxID: "tx-key", At: "2026-11-21T10:22:00Z"}
			return rec, nil
		},
		"billing:RecordBill": func(_ context.Context, args []string) (any, error) {
			var req api.BillRequest
			if err := json.Unmarshal([]byte(args[2]), &req); err != nil {
				return nil, err
			}
			rec := billingRecord(args[0], args[1])
			rec.Bill = &agreement.BillRecord{Amount: req.Statement.Amount, TariffSHA256: req.Statement.TariffSHA256, Slots: req.Statement.Slots,
				UtilitySignature: req.UtilitySignature, TxID: "tx-bill", At: "2026-11-21T10:23:00Z"}
			return rec, nil
		},
		"billing:GetBillingPeriod": func(_ context.Context, args []string) (any, error) { return billingRecord(args[0], args[1]), nil },
		"Consortium": returns(&api.Consortium{Channel: "meters", Height: 12,
			Members:       []channel.Member{{Name: "PTB", MSPID: "PTB", AnchorPeers: []string{"peer0.ptb:7051"}}},
			ConsensusType: "BFT",
			Orderers:      []channel.Consenter{{ID: 1, Host: "orderer.ptb", Port: 7050, MSPID: "PTB", Subject: "CN=orderer.ptb"}},
			ConfigSeq:     3, NMI: "PTB",
			Chaincode: api.Chaincode{Name: "pki", Version: "1.0", Sequence: 1, ContractVersion: contract.Version}}),
	}}
}

// sampleKey is the P-256 fixture key's PEM, used for records whose key the
// test does not care about.
var sampleKey = sync.OnceValue(func() string {
	b, err := os.ReadFile(filepath.Join(testdata, "keys/p256.good.pem"))
	if err != nil {
		panic(err)
	}
	return string(b)
})

// meterRecord is an active meter as the chaincode would answer it.
func meterRecord(id, publicKey string) *meter.Meter {
	if publicKey == "" {
		publicKey = sampleKey()
	}
	k, err := meter.ParsePublicKeyPEM(publicKey)
	if err != nil {
		panic(err)
	}
	return &meter.Meter{ID: id, NMI: "PTB", PublicKey: k.PEM(), Curve: k.Curve(), Fingerprint: k.Fingerprint(),
		KeyVersion: 1, Status: meter.StatusActive,
		Metadata:     meter.Metadata{Manufacturer: "Acme", Model: "E350", SerialNumber: "SN-" + id, SoftwareID: "fw-1.2", SoftwareChecksum: "sha256:9f86d081884c7d65"},
		RegisteredTx: "tx-reg", RegisteredAt: "2026-11-21T10:20:00.123456789Z", UpdatedTx: "tx-reg", UpdatedAt: "2026-11-21T10:20:00.123456789Z"}
}

// meterType is a type of the fixture's NMI as the chaincode would answer
// it, with the software of meterRecord approved.
func meterType(id string) *meter.MeterType {
	return &meter.MeterType{ID: id, NMI: fixtureNMI, Manufacturer: "Acme", Model: "E350", Certificate: "DE-MI003-PTB001",
		Versions: []meter.ApprovedSoftware{{Software: meter.Software{ID: "fw-1.2", Checksum: "sha256:9f86d081884c7d65"},
			ApprovedFrom: "2026-11-01T00:00:00Z", ApprovedTx: "tx-type", ApprovedAt: "2026-11-21T10:20:00Z"}},
		RecordedTx: "tx-type", RecordedAt: "2026-11-21T10:20:00Z", UpdatedTx: "tx-type", UpdatedAt: "2026-11-21T10:20:00Z"}
}

// updateReport is the software log's entry of an accepted statement (its
// bytes and signature in base64).
func updateReport(st meter.UpdateStatement, statement, signature string) *meter.UpdateReport {
	return &meter.UpdateReport{MeterID: st.MeterID, Number: 1, Time: st.Time, From: st.From, To: st.To, Result: st.Result,
		Detail: st.Detail, Statement: statement, Signature: signature, KeyVersion: 1, SubmittedBy: "CMIMSP",
		TxID: "tx-update", RecordedAt: "2026-12-07T10:00:01Z"}
}

// billingRecord is a bound period as the chaincode would answer it.
func billingRecord(meterID, period string) *agreement.Record {
	return &agreement.Record{Period: periodStatement(meterID, period), CustomerKey: sampleKey(),
		CustomerSignature: "MEUCIQDkZ0MKh2lDfQ==", PeriodTx: "tx-bind"}
}

// periodStatement is a valid statement of a day of 15-minute slots.
func periodStatement(meterID, period string) agreement.PeriodStatement {
	return agreement.PeriodStatement{Type: agreement.TypePeriod, MeterID: meterID, Period: period,
		Start: "2026-11-20T00:00:00Z", Interval: "15m0s", Slots: 96, Group: 2048, MaxReading: 100000, MaxWeight: 1000,
		PublicKeySHA256: meter.IdentityHash("functional public key"), CustomerKeySHA256: meter.IdentityHash("customer key")}
}

func measurementOf(payloadB64 string) (meter.Measurement, error) {
	p, err := base64.StdEncoding.DecodeString(payloadB64)
	if err != nil {
		return meter.Measurement{}, err
	}
	return meter.ParseMeasurement(p)
}

func (f *fakeLedger) record(c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeLedger) answer(ctx context.Context, name string, args []string) ([]byte, error) {
	f.mu.Lock()
	a, ok := f.answers[name]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("fake ledger: no answer for %s", name)
	}
	v, err := a(ctx, args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (f *fakeLedger) receipt(result []byte) *ledger.Receipt {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs++
	return &ledger.Receipt{Result: result, TxID: fmt.Sprintf("tx%03d", f.txs), Block: uint64(100 + f.txs)}
}

// SubmitAll answers like the gateway: every part is endorsed before any is
// submitted, so a refusal of any part commits nothing. Each part's
// transaction is recorded (record) before it is "sent"; its Transaction is
// the result itself, which Settle answers with.
func (f *fakeLedger) SubmitAll(ctx context.Context, as api.Role, tx string, parts [][]string, record ledger.Recorder) ([]*ledger.Receipt, error) {
	c := call{Method: "SubmitAll", Role: as, Tx: tx, Parts: parts}
	if len(parts) == 1 {
		c.Args = parts[0]
	}
	f.record(c)
	if f.submitAll != nil {
		return f.submitAll(parts)
	}
	results := make([][]byte, len(parts))
	for i, args := range parts {
		out, err := f.answer(ctx, tx, args)
		if err != nil {
			return nil, &ledger.PartError{Part: i, Err: err}
		}
		results[i] = out
	}
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		f.entered <- struct{}{}
		<-gate
		// As the gateway does: a caller that went away while its
		// transaction was held gets nothing sent.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	receipts := make([]*ledger.Receipt, len(parts))
	if f.readOnly[tx] {
		for i, out := range results {
			receipts[i] = &ledger.Receipt{Result: out, TxID: fmt.Sprintf("endorsed-%d", i), ReadOnly: true}
		}
		return receipts, nil
	}
	for i, out := range results {
		receipts[i] = f.receipt(out)
		if record != nil {
			if err := record(i, ledger.Pending{Role: as, TxID: receipts[i].TxID, Transaction: out, Result: out}); err != nil {
				return nil, err
			}
		}
		f.mu.Lock()
		f.ordered++
		f.mu.Unlock()
		if f.lose > 0 {
			f.lose--
			return nil, &ledger.OutcomeUnknownError{TxID: receipts[i].TxID, Cause: context.DeadlineExceeded}
		}
	}
	return receipts, nil
}

// Settle answers a recorded transaction as committed, with its result.
func (f *fakeLedger) Settle(ctx context.Context, tx string, p ledger.Pending) (*ledger.Receipt, error) {
	f.record(call{Method: "Settle", Tx: tx, Args: []string{p.TxID}})
	return &ledger.Receipt{Result: p.Transaction, TxID: p.TxID, Block: 99}, nil
}

// Status reports every transaction as committed and valid in block 7.
func (f *fakeLedger) Status(ctx context.Context, txID string, wait time.Duration) (*ledger.TxStatus, error) {
	f.record(call{Method: "Status", Args: []string{txID}})
	return &ledger.TxStatus{TxID: txID, Committed: true, Valid: true, Code: "VALID", Block: 7}, nil
}

func (f *fakeLedger) Evaluate(ctx context.Context, as api.Role, tx string, args ...string) ([]byte, error) {
	f.record(call{Method: "Evaluate", Role: as, Tx: tx, Args: args})
	return f.answer(ctx, tx, args)
}

func (f *fakeLedger) AwaitBlock(ctx context.Context, block uint64) error {
	f.record(call{Method: "AwaitBlock", Block: block})
	return f.optional(ctx, "AwaitBlock")
}

// Block answers the recorded chain's blocks (testdata/blocks) and,
// past them, an empty block of the number asked.
func (f *fakeLedger) Block(ctx context.Context, n uint64) (*common.Block, error) {
	f.record(call{Method: "Block", Block: n})
	raw, err := os.ReadFile(filepath.Join(testdata, "blocks", fmt.Sprintf("%04d.block", n)))
	if errors.Is(err, os.ErrNotExist) {
		return &common.Block{Header: &common.BlockHeader{Number: n}}, nil
	}
	if err != nil {
		return nil, err
	}
	var b common.Block
	return &b, proto.Unmarshal(raw, &b)
}

func (f *fakeLedger) Height(ctx context.Context) (uint64, error) {
	f.record(call{Method: "Height"})
	if err := f.optional(ctx, "Height"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.height == nil {
		return 0, nil
	}
	return f.height(), nil
}

func (f *fakeLedger) Ready(ctx context.Context) error {
	f.record(call{Method: "Ready"})
	return f.optional(ctx, "Ready")
}

func (f *fakeLedger) Consortium(ctx context.Context) (*api.Consortium, error) {
	f.record(call{Method: "Consortium"})
	out, err := f.answer(ctx, "Consortium", nil)
	if err != nil {
		return nil, err
	}
	c := new(api.Consortium)
	return c, json.Unmarshal(out, c)
}

// optional answers a call that succeeds unless an answer says otherwise.
func (f *fakeLedger) optional(ctx context.Context, name string) error {
	f.mu.Lock()
	a, ok := f.answers[name]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := a(ctx, nil)
	return err
}

// on sets the answer to a transaction.
func (f *fakeLedger) on(name string, a answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[name] = a
}

// recorded returns a copy of the calls so far.
func (f *fakeLedger) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// named returns the calls to one transaction (or method).
func (f *fakeLedger) named(name string) []call {
	var out []call
	for _, c := range f.recorded() {
		if c.Tx == name || (c.Tx == "" && c.Method == name) {
			out = append(out, c)
		}
	}
	return out
}

// index feeds blocks to the fixture's index of the peer's blocks.
func (f *fixture) index(t *testing.T, blocks ...*chain.Block) {
	t.Helper()
	for _, b := range blocks {
		if err := f.readings.Add(b); err != nil {
			t.Fatal(err)
		}
	}
}

// acceptedBlock is block number holding one valid transaction that
// accepted every item.
func acceptedBlock(t *testing.T, number uint64, txID string, items ...meter.SignedMeasurement) *chain.Block {
	t.Helper()
	packed, err := wire.Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	o := wire.Outcome{TxID: txID, Items: len(items), Accepted: len(items), KeyVersions: map[string]int{}}
	for _, sm := range items {
		o.KeyVersions[sm.MeterID] = 1
	}
	result, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return &chain.Block{Number: number, Txs: []chain.Tx{registrationOf(t, items), {ID: txID, Code: "VALID", Chaincode: "pki", Function: wire.TxSubmitPacked,
		Args: []string{string(packed)}, ResponsePayload: result, Time: time.Date(2026, 11, 21, 10, 20, 0, 0, time.UTC)}}}
}

// registrationOf is the transaction that registered the items' meters,
// each with the fixture key that signed its item, as the chaincode writes
// it: the index believes a reading marked accepted only if the meter's key
// in force verifies it.
func registrationOf(t *testing.T, items []meter.SignedMeasurement) chain.Tx {
	t.Helper()
	tx := chain.Tx{ID: "reg-" + items[0].MeterID, Code: "VALID", Chaincode: "pki", Function: wire.TxRegisterMeters, CreatorMSP: "PTBMSP"}
	seen := map[string]bool{}
	for _, sm := range items {
		if seen[sm.MeterID] {
			continue
		}
		seen[sm.MeterID] = true
		var pub *meter.PublicKey
		for _, name := range []string{"p256", "p384", "secp256k1", "other"} {
			k, err := meter.ParsePublicKeyPEM(string(readTestdata(t, "keys/"+name+".good.pem")))
			if err != nil {
				t.Fatal(err)
			}
			if k.Verify(sm.Payload, sm.Signature) == nil {
				pub = k
				break
			}
		}
		if pub == nil {
			t.Fatalf("no fixture key signed the item of %s", sm.MeterID)
		}
		m, _ := json.Marshal(meter.Meter{ID: sm.MeterID, NMI: "PTBMSP", PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint(),
			KeyVersion: 1, Status: meter.StatusActive})
		kv, _ := json.Marshal(meter.KeyVersion{MeterID: sm.MeterID, Version: 1, PublicKey: pub.PEM(), Curve: pub.Curve(), Fingerprint: pub.Fingerprint()})
		tx.Writes = append(tx.Writes, chain.Write{Namespace: "pki", Key: wire.KeyVersionKey(sm.MeterID, 1), Value: kv},
			chain.Write{Namespace: "pki", Key: wire.MeterKey(sm.MeterID), Value: m})
	}
	return tx
}
