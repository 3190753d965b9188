// Package ledger is the registry's side of the chain: it submits and
// evaluates the meter-PKI chaincode's transactions through the NMI's own
// peer (Fabric Gateway, one gRPC connection for the whole process, one client
// identity per role), retries what is worth retrying, and turns every failure
// into either a chaincode refusal (a *meter.Error with its code) or one of
// this package's errors.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	gatewaypb "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/gateway"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// Errors besides chaincode refusals.
var (
	// ErrUnavailable: the peer, the other NMIs' peers or the ordering
	// service could not be reached in time. Nothing was written.
	ErrUnavailable = errors.New("the Fabric network is unavailable")
	// ErrConflict: concurrent updates of the same records kept invalidating
	// the transaction. Nothing was written.
	ErrConflict = errors.New("concurrent updates of the same records conflicted")
)

// InvalidError is a transaction that was ordered but that the peers marked
// invalid: nothing it wrote was kept.
type InvalidError struct {
	TxID string
	Code peer.TxValidationCode
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("transaction %s was committed as invalid: %s", e.TxID, e.Code)
}

// Receipt is a committed, valid transaction, or a read-only one.
type Receipt struct {
	Result []byte
	TxID   string
	Block  uint64
	// ReadOnly: the endorsed transaction wrote nothing (a repeated request
	// answered from the ledger's state), so it was not ordered; TxID names
	// no committed transaction.
	ReadOnly bool
}

// Config says where the peer is and which identity acts for each role.
type Config struct {
	Peer       gateway.Peer
	Identities map[api.Role]gateway.Identity
	Channel    string
	Chaincode  string
}

// identityOf maps registry roles to the NMI's Fabric identities; the
// chaincode checks the same roles again from the certificate.
func (c Config) validate() error {
	for _, r := range api.Roles {
		if _, ok := c.Identities[r]; !ok {
			return fmt.Errorf("no Fabric identity for role %s", r)
		}
	}
	if c.Channel == "" || c.Chaincode == "" {
		return errors.New("channel and chaincode are required")
	}
	return nil
}

// Fabric is the ledger reached through one peer's gateway.
type Fabric struct {
	cfg       Config
	closeConn func() error
	gateways  map[api.Role]*client.Gateway
	log       *slog.Logger
	metrics   *metrics
	retry     retryPolicy
}

type retryPolicy struct {
	attempts int
	base     time.Duration
	max      time.Duration
}

var defaultRetry = retryPolicy{attempts: 5, base: 50 * time.Millisecond, max: 2 * time.Second}

// Open connects to the peer once and builds a gateway client per role on
// that connection.
func Open(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Fabric, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	conn, err := gateway.NewGRPC(cfg.Peer)
	if err != nil {
		return nil, err
	}
	return connect(cfg, conn, conn.Close, log, reg)
}

// connect builds the gateway clients over a connection to the peer's
// Gateway service (a fake one in tests).
func connect(cfg Config, conn grpc.ClientConnInterface, closeConn func() error, log *slog.Logger, reg prometheus.Registerer) (*Fabric, error) {
	f := &Fabric{cfg: cfg, closeConn: closeConn, gateways: map[api.Role]*client.Gateway{}, log: log,
		metrics: newMetrics(reg), retry: defaultRetry}
	for role, id := range cfg.Identities {
		gw, err := gateway.Connect(conn, id, gateway.DefaultOptions)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("identity for %s: %w", role, err)
		}
		f.gateways[role] = gw
	}
	return f, nil
}

// Close releases the gateways and the connection.
func (f *Fabric) Close() error {
	var errs []error
	for _, gw := range f.gateways {
		errs = append(errs, gw.Close())
	}
	return errors.Join(append(errs, f.closeConn())...)
}

func (f *Fabric) network(role api.Role) *client.Network {
	return f.gateways[role].GetNetwork(f.cfg.Channel)
}

func (f *Fabric) contract(role api.Role) *client.Contract {
	return f.network(role).GetContract(f.cfg.Chaincode)
}

// Evaluate runs a read-only transaction on the NMI's peer.
func (f *Fabric) Evaluate(ctx context.Context, role api.Role, tx string, args ...string) ([]byte, error) {
	var out []byte
	err := f.withRetry(ctx, tx, func() error {
		var err error
		out, err = f.contract(role).EvaluateWithContext(ctx, tx, client.WithArguments(args...))
		return classify(err)
	})
	return out, err
}

// Block reads one block of the channel from the NMI's peer, with the
// orderers' signatures, as the auditor identity.
func (f *Fabric) Block(ctx context.Context, number uint64) (*common.Block, error) {
	var out *common.Block
	err := f.withRetry(ctx, "GetBlockByNumber", func() error {
		var err error
		out, err = gateway.BlockByNumber(ctx, f.network(api.RoleAuditor), number)
		return classify(err)
	})
	return out, err
}

// Transaction reads one committed transaction of the channel from the
// NMI's peer, parsed, as the auditor identity: where the readings index
// finds a reading's evidence.
func (f *Fabric) Transaction(ctx context.Context, txID string) (*chain.Tx, error) {
	var out *chain.Tx
	err := f.withRetry(ctx, "GetTransactionByID", func() error {
		var err error
		out, err = gateway.TransactionByID(ctx, f.network(api.RoleAuditor), txID)
		return classify(err)
	})
	return out, err
}

// PartError says which part of a SubmitAll failed; Committed tells whether
// other parts may have been committed already.
type PartError struct {
	Part      int
	Err       error
	Committed bool
}

func (e *PartError) Error() string { return fmt.Sprintf("part %d: %v", e.Part, e.Err) }
func (e *PartError) Unwrap() error { return e.Err }

func (f *Fabric) endorse(ctx context.Context, role api.Role, tx string, args []string) (*client.Transaction, error) {
	start := time.Now()
	proposal, err := f.contract(role).NewProposal(tx, client.WithArguments(args...))
	if err != nil {
		return nil, err
	}
	t, err := proposal.EndorseWithContext(ctx)
	f.metrics.endorse.WithLabelValues(tx, outcome(err)).Observe(time.Since(start).Seconds())
	return t, classify(err)
}

// withRetry runs attempt until it succeeds, fails for good, or the attempts
// or the context run out.
func (f *Fabric) withRetry(ctx context.Context, tx string, attempt func() error) error {
	var err error
	for i := 0; i < f.retry.attempts; i++ {
		if err = attempt(); err == nil || !retryable(err) {
			return err
		}
		f.metrics.retries.WithLabelValues(tx, reason(err)).Inc()
		f.log.Debug("retrying transaction", "tx", tx, "attempt", i+1, "err", err)
		wait := min(f.retry.base<<i, f.retry.max)
		wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
		select {
		case <-ctx.Done():
			// The last attempt's error is told, not wrapped: it may be
			// ErrConflict, and the answer is that the time ran out.
			return fmt.Errorf("%w: %w (last: %v)", ErrUnavailable, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
	return err
}

// classify turns a gateway error into a refusal, ErrUnavailable, ErrConflict
// or, failing those, itself. It reads what fabric-gateway types: the gRPC
// status every gateway call fails with (an EndorseError, SubmitError or
// CommitStatusError carries it, an evaluation returns it as is) and its
// details, one gateway.ErrorDetail per endorser that failed, with the
// endorser's own answer.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var refusal *meter.Error
	if errors.As(err, &refusal) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict) {
		return err
	}
	// status.FromError would answer the whole wrapped text as the message.
	var grpcErr interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &grpcErr) {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	st := grpcErr.GRPCStatus()
	if r := refusalIn(st); r != nil {
		return r
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return fmt.Errorf("%w: %v", ErrUnavailable, st.Message())
	case codes.FailedPrecondition:
		// The gateway found no set of peers that satisfies the endorsement
		// policy: discovery does not know enough of them yet.
		return fmt.Errorf("%w: %v", ErrUnavailable, st.Message())
	case codes.Aborted:
		// The gateway aborts three outcomes with the same code and tells
		// them apart only in its message: endorsers answered differently
		// (one peer has not committed the latest block yet: endorsing again
		// resolves it), too few endorsed (a peer or its chaincode failed:
		// again), or the first endorsers failed (with no refusal, an answer
		// that trying again does not change).
		disagree := func(m string) bool { return strings.Contains(m, payloadsDiffer) }
		switch {
		case disagree(st.Message()) || slices.ContainsFunc(endorsers(st), func(d *gatewaypb.ErrorDetail) bool { return disagree(d.GetMessage()) }):
			return fmt.Errorf("%w: endorsing peers disagree (one is behind)", ErrConflict)
		case strings.HasPrefix(st.Message(), tooFewEndorsements):
			return fmt.Errorf("%w: %v", ErrUnavailable, st.Message())
		}
	}
	return err
}

// The Fabric gateway's messages for outcomes it gives no code of their own
// (internal/pkg/gateway: endorse.go, endorsement.go).
const (
	tooFewEndorsements = "failed to collect enough transaction endorsements"
	payloadsDiffer     = "ProposalResponsePayloads do not match"
)

// endorsers are the answers of the endorsers that failed, as the gateway
// attaches them to its status.
func endorsers(st *status.Status) []*gatewaypb.ErrorDetail {
	var out []*gatewaypb.ErrorDetail
	for _, d := range st.Details() {
		if e, ok := d.(*gatewaypb.ErrorDetail); ok {
			out = append(out, e)
		}
	}
	return out
}

// refusalIn finds the chaincode's refusal ("CODE: message") in an
// endorser's answer or, for an evaluation, in the status message.
func refusalIn(st *status.Status) *meter.Error {
	for _, d := range endorsers(st) {
		if r, ok := meter.ParseErrorIn(d.GetMessage(), refusalCodes); ok {
			return r
		}
	}
	if r, ok := meter.ParseErrorIn(st.Message(), refusalCodes); ok {
		return r
	}
	return nil
}

// refusalCodes are the codes of both contracts the registry submits to.
var refusalCodes = slices.Concat(meter.Codes, agreement.Codes)

func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict)
}

func reason(err error) string {
	if errors.Is(err, ErrConflict) {
		return "conflict"
	}
	return "unavailable"
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if meter.CodeOf(classify(err)) != "" {
		return "refused"
	}
	return "error"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// AwaitBlock returns once the NMI's peer has committed block (read-your-
// writes across NMIs: a client that wrote through another NMI passes that
// answer's block number).
func (f *Fabric) AwaitBlock(ctx context.Context, block uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := f.network(api.RoleAuditor).BlockEvents(ctx, client.WithStartBlock(block))
	if err != nil {
		return classify(err)
	}
	select {
	case _, ok := <-events:
		if !ok {
			return fmt.Errorf("%w: block events ended before block %d", ErrUnavailable, block)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: the peer has not committed block %d yet", ErrUnavailable, block)
	}
}

// Blocks streams the channel's blocks from a block number on, as the NMI's
// peer commits them.
func (f *Fabric) Blocks(ctx context.Context, from uint64) (<-chan *common.Block, error) {
	return f.network(api.RoleAuditor).BlockEvents(ctx, client.WithStartBlock(from))
}

// Ready checks that the peer answers: the height of the channel.
func (f *Fabric) Ready(ctx context.Context) error {
	_, err := f.Height(ctx)
	return err
}

// Height is how many blocks of the channel the NMI's peer has committed.
func (f *Fabric) Height(ctx context.Context) (uint64, error) {
	h, err := channel.Height(ctx, f.network(api.RoleAuditor))
	return h, classify(err)
}

// Consortium reads members, orderers, height and the chaincode definition.
func (f *Fabric) Consortium(ctx context.Context) (*api.Consortium, error) {
	nw := f.network(api.RoleAuditor)
	cfg, err := channel.Query(ctx, nw)
	if err != nil {
		return nil, classify(err)
	}
	height, err := channel.Height(ctx, nw)
	if err != nil {
		return nil, classify(err)
	}
	def, err := channel.ChaincodeDefinition(ctx, nw, f.cfg.Chaincode)
	if err != nil {
		return nil, classify(err)
	}
	meta, err := nw.GetContract(f.cfg.Chaincode).EvaluateWithContext(ctx, "org.hyperledger.fabric:GetMetadata")
	if err != nil {
		return nil, classify(err)
	}
	var m struct {
		Contracts map[string]struct {
			Info struct {
				Version string `json:"version"`
			} `json:"info"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("contract metadata: %w", err)
	}
	return &api.Consortium{
		Channel: f.cfg.Channel, Height: height, Members: cfg.Members, ConsensusType: cfg.ConsensusType,
		Orderers: cfg.Consenters, ConfigSeq: cfg.Sequence, NMI: f.cfg.Identities[api.RoleAuditor].MSPID,
		Chaincode: api.Chaincode{Name: def.Name, Version: def.Version, Sequence: def.Sequence,
			ContractVersion: m.Contracts[wire.Contract].Info.Version},
	}, nil
}

type metrics struct {
	endorse, submit, commit *prometheus.HistogramVec
	retries                 *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		endorse: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "registry_fabric_endorse_seconds", Help: "Time to get a transaction endorsed.", Buckets: buckets,
		}, []string{"transaction", "outcome"}),
		submit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "registry_fabric_submit_seconds", Help: "Time to hand an endorsed transaction to ordering.", Buckets: buckets,
		}, []string{"transaction", "outcome"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "registry_fabric_commit_seconds", Help: "Time from submission until the peer reports the commit status.", Buckets: buckets,
		}, []string{"transaction", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_fabric_retries_total", Help: "Transactions retried, by reason.",
		}, []string{"transaction", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.endorse, m.submit, m.commit, m.retries)
	}
	return m
}
