package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

func (s *Server) registerMeter(c *gin.Context) {
	var reg meter.Registration
	if err := decodeJSON(c, &reg); err != nil {
		s.bodyError(c, err)
		return
	}
	// The chaincode checks the same rules; checking here first spares the
	// network a transaction that can only be refused.
	key, err := reg.Validate()
	if err != nil {
		s.failErr(c, err)
		return
	}
	// Only the meter can ask that its key be bound, and only for the NMI it
	// was made for: a registrar who merely knows the public key cannot.
	if err := reg.VerifyProof(key, s.opts.NMI); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitMeter(c, http.StatusCreated, wire.TxRegisterMeter, string(mustJSON(reg)))
}

// submitMeter submits a transaction that answers with a meter record.
func (s *Server) submitMeter(c *gin.Context, status int, tx string, args ...string) {
	r, err := s.submit(c, api.RoleOperator, tx, args...)
	if err != nil {
		s.failErr(c, err)
		return
	}
	m := new(meter.Meter)
	if err := json.Unmarshal(r.Result, m); err != nil {
		s.failErr(c, fmt.Errorf("decode %s result: %w", tx, err))
		return
	}
	if status == http.StatusCreated {
		c.Header("Location", api.Prefix+"/meters/"+m.ID)
	}
	if r.ReadOnly {
		// A repeated request: the ledger holds it already.
		c.JSON(http.StatusOK, api.MeterReceipt{Meter: m, Tx: s.earlierTx(c, tx, m), Duplicate: true})
		return
	}
	c.JSON(status, api.MeterReceipt{Meter: m, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

// earlierTx names the transaction that did what a repeated request asks:
// the meter's registration, or the assignment of its type.
func (s *Server) earlierTx(c *gin.Context, tx string, m *meter.Meter) api.Tx {
	if tx == wire.TxAssignMeterType {
		return s.typeAssignedIn(c, m)
	}
	return s.committedTx(c, m.RegisteredTx)
}

// committedTx names a transaction committed earlier, with its block as the
// NMI's peer reports it (0 if it cannot say now).
func (s *Server) committedTx(c *gin.Context, txID string) api.Tx {
	st, err := s.opts.Ledger.Status(c.Request.Context(), txID, 2*time.Second)
	if err != nil || !st.Committed {
		s.log.Warn("block of an earlier transaction unknown", "txId", txID, "err", err)
		return api.Tx{TxID: txID}
	}
	return api.Tx{TxID: txID, Block: st.Block}
}

// transactionStatus answers what the NMI's peer knows of a transaction;
// ?wait=10s waits up to that long for it to commit.
func (s *Server) transactionStatus(c *gin.Context) {
	txID := c.Param("txId")
	if !txIDRE.MatchString(txID) {
		fail(c, problem(string(meter.CodeMalformed), "a transaction ID is 64 lowercase hexadecimal digits"))
		return
	}
	wait := 200 * time.Millisecond
	if w := c.Query("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 || d > 30*time.Second {
			fail(c, problem(string(meter.CodeMalformed), "wait is a duration of at most 30s, e.g. 5s"))
			return
		}
		wait = max(d, wait)
	}
	st, err := s.opts.Ledger.Status(c.Request.Context(), txID, wait)
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := api.TransactionStatus{TxID: txID, Status: api.TxUnknown}
	if st.Committed {
		out.Status, out.ValidationCode, out.Block = api.TxInvalid, st.Code, st.Block
		if st.Valid {
			out.Status = api.TxValid
		}
	}
	c.JSON(http.StatusOK, out)
}

var txIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// registerMeters enrols up to api.MaxRegistrationBatch meters from JSON (an
// array of registrations) or CSV. Everything is checked first, then every
// transaction of 1,000 meters is endorsed before any is submitted: a refusal
// anywhere registers nothing.
func (s *Server) registerMeters(c *gin.Context) {
	mt, err := mediaType(c, "application/json", "text/csv")
	if err != nil {
		s.bodyError(c, err)
		return
	}
	var regs []meter.Registration
	// where names an entry in a refusal: its index, or its line in a CSV.
	where := func(i int) string { return fmt.Sprintf("entry %d", i) }
	if mt == "text/csv" {
		var lines []int
		regs, lines, err = readRegistrationsCSV(c.Request.Body, s.opts.NMI)
		where = func(i int) string { return fmt.Sprintf("CSV line %d", lines[i]) }
	} else {
		err = decodeJSON(c, &regs)
	}
	if err != nil {
		s.bodyError(c, err)
		return
	}
	if len(regs) == 0 {
		fail(c, problem(string(meter.CodeMalformed), "the batch holds no meters"))
		return
	}
	if len(regs) > api.MaxRegistrationBatch {
		fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("the batch holds %d meters; at most %d per request", len(regs), api.MaxRegistrationBatch)))
		return
	}
	if p, ok := checkBatch(regs, s.opts.NMI, where); !ok {
		fail(c, p)
		return
	}
	var parts [][]string
	for start := 0; start < len(regs); start += wire.MaxBulkRegistration {
		end := min(start+wire.MaxBulkRegistration, len(regs))
		parts = append(parts, []string{string(mustJSON(regs[start:end]))})
	}
	receipts, err := s.submitAll(c, api.RoleOperator, wire.TxRegisterMeters, parts)
	if err != nil {
		s.failBatch(c, err, receipts, len(regs))
		return
	}
	out := api.Enrolment{MeterIDs: make([]string, 0, len(regs)), Transactions: []api.BatchTx{}}
	for _, r := range receipts {
		var e wire.Enrolment
		if err := json.Unmarshal(r.Result, &e); err != nil {
			s.failErr(c, fmt.Errorf("decode RegisterMeters result: %w", err))
			return
		}
		out.MeterIDs = append(out.MeterIDs, e.MeterIDs...)
		out.Existing = append(out.Existing, e.Existing...)
		if !r.ReadOnly {
			out.Transactions = append(out.Transactions, api.BatchTx{Tx: api.Tx{TxID: r.TxID, Block: r.Block}, Meters: len(e.MeterIDs)})
		}
	}
	out.Registered = len(out.MeterIDs)
	status := http.StatusCreated
	if out.Registered == 0 {
		status = http.StatusOK // a repeated request: everything was registered already
	}
	c.JSON(status, out)
}

// checkBatch applies the registration rules to every entry, checks each
// meter's proof of possession for nmi, and the rule that IDs and keys are
// unique within the batch, and reports every entry that breaks one (up to
// 50), each named by where.
func checkBatch(regs []meter.Registration, nmi string, where func(int) string) (api.Problem, bool) {
	var errs []string
	var first *meter.Error
	refused, last := 0, -1 // entries refused; the last one noted
	ids, keys := map[string]int{}, map[string]int{}
	note := func(i int, err error) {
		var r *meter.Error
		if !errors.As(err, &r) {
			r = meter.Errorf(meter.CodeMalformed, "%v", err)
		}
		if first == nil {
			first = r
		}
		if i != last {
			refused, last = refused+1, i
		}
		if len(errs) < 50 {
			errs = append(errs, fmt.Sprintf("%s (meter %q): %s: %s", where(i), regs[i].MeterID, r.Code, r.Message))
		}
	}
	for i, reg := range regs {
		key, err := reg.Validate()
		if err != nil {
			note(i, err)
			continue
		}
		if err := reg.VerifyProof(key, nmi); err != nil {
			note(i, err)
		}
		if j, dup := ids[reg.MeterID]; dup {
			note(i, meter.Errorf(meter.CodeMeterExists, "meter ID repeats %s", where(j)))
		}
		if j, dup := keys[key.Fingerprint()]; dup {
			note(i, meter.Errorf(meter.CodeKeyInUse, "public key repeats %s: every meter needs its own key", where(j)))
		}
		ids[reg.MeterID], keys[key.Fingerprint()] = i, i
	}
	if first == nil {
		return api.Problem{}, true
	}
	p := problem(string(first.Code), fmt.Sprintf("%s; nothing was registered", errs[0]))
	if len(errs) > 1 {
		entries := fmt.Sprintf("%d of %d entries are refused", refused, len(regs))
		if refused == 1 {
			entries = fmt.Sprintf("1 of %d entries is refused for %d reasons", len(regs), len(errs))
		}
		if len(errs) == 50 {
			entries += " (errors lists the first 50 reasons)"
		}
		p.Detail = fmt.Sprintf("%s (first: %s); nothing was registered", entries, errs[0])
		p.Errors = errs
	}
	return p, false
}

// failBatch reports a failed batch registration, saying which parts (if
// any) were committed before the failure.
func (s *Server) failBatch(c *gin.Context, err error, receipts []*ledger.Receipt, total int) {
	p := problemFor(err)
	var part *ledger.PartError
	if errors.As(err, &part) {
		first := part.Part * wire.MaxBulkRegistration
		p.Detail = fmt.Sprintf("in the part starting at entry %d: %s", first, p.Detail)
		if part.Committed {
			var done []string
			for i, r := range receipts {
				if r != nil {
					done = append(done, fmt.Sprintf("entries %d-%d in tx %s (block %d)", i*wire.MaxBulkRegistration,
						min((i+1)*wire.MaxBulkRegistration, total)-1, r.TxID, r.Block))
				}
			}
			p.Errors = done
			p.Detail += fmt.Sprintf("; %d other parts were committed (listed in errors): resubmit only the failed part", len(done))
		} else {
			p.Detail += "; nothing was registered"
		}
	}
	if p.Status >= 500 {
		s.log.Error("batch registration failed", "err", err)
	}
	fail(c, p)
}

func (s *Server) preEnrol(c *gin.Context) {
	var req api.PreEnrolmentRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := meter.ValidateMeterID(req.MeterID); err != nil {
		s.failErr(c, err)
		return
	}
	if err := meter.ValidateHash(req.IdentityHash); err != nil {
		s.failErr(c, err)
		return
	}
	r, err := s.submit(c, api.RoleOperator, wire.TxPreEnrollMeter, req.MeterID, req.IdentityHash)
	if err != nil {
		s.failErr(c, err)
		return
	}
	pre := new(meter.PreEnrolment)
	if err := json.Unmarshal(r.Result, pre); err != nil {
		s.failErr(c, err)
		return
	}
	c.Header("Location", api.Prefix+"/pre-enrolments/"+pre.MeterID)
	c.JSON(http.StatusCreated, api.PreEnrolmentReceipt{PreEnrolment: pre, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

func (s *Server) getPreEnrolment(c *gin.Context) {
	if id, ok := s.meterID(c); ok && s.awaitMinBlock(c) {
		evaluate[meter.PreEnrolment](s, c, wire.TxGetPreEnrolment, id)
	}
}

func (s *Server) rotateKey(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	var req api.RotateRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if _, err := meter.ParsePublicKeyPEM(req.PublicKey); err != nil {
		s.failErr(c, err)
		return
	}
	if _, err := base64.StdEncoding.DecodeString(req.Proof); err != nil || req.Proof == "" {
		fail(c, problem(string(meter.CodeMalformed), "proof must be the meter's DER signature over the rotation statement, in standard base64"))
		return
	}
	s.submitMeter(c, http.StatusOK, wire.TxRotateKey, id, req.PublicKey, req.Proof)
}

func (s *Server) revokeMeter(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	var req api.RevokeRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if _, err := meter.ParseReason(string(req.Reason)); err != nil {
		s.failErr(c, err)
		return
	}
	if req.InvalidityDate != "" {
		if _, err := meter.ParseTime(req.InvalidityDate); err != nil {
			s.failErr(c, err)
			return
		}
	}
	s.submitMeter(c, http.StatusOK, wire.TxRevokeMeter, id, string(req.Reason), req.InvalidityDate)
}

func (s *Server) reinstateMeter(c *gin.Context) {
	if id, ok := s.meterID(c); ok {
		s.submitMeter(c, http.StatusOK, wire.TxReinstateMeter, id)
	}
}

func (s *Server) getMeter(c *gin.Context) {
	if id, ok := s.meterID(c); ok && s.awaitMinBlock(c) {
		evaluate[meter.Meter](s, c, wire.TxGetMeter, id)
	}
}

func (s *Server) meterHistory(c *gin.Context) {
	if id, ok := s.meterID(c); ok && s.awaitMinBlock(c) {
		evaluate[[]api.MeterVersion](s, c, wire.TxGetMeterHistory, id)
	}
}

func (s *Server) meterKeys(c *gin.Context) {
	if id, ok := s.meterID(c); ok && s.awaitMinBlock(c) {
		evaluate[[]meter.KeyVersion](s, c, wire.TxGetMeterKeys, id)
	}
}

func (s *Server) listMeters(c *gin.Context) {
	nmi, status := c.Query("nmi"), c.Query("status")
	if _, err := meter.ParseStatus(status); err != nil {
		s.failErr(c, err)
		return
	}
	size, bookmark, ok := s.page(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	var page wire.MeterPage
	if !s.evaluateInto(c, &page, wire.TxListMeters, nmi, status, size, bookmark) {
		return
	}
	c.JSON(http.StatusOK, api.MeterList{Meters: page.Meters, Next: encodeCursor(page.Bookmark)})
}

// meterID reads and checks the :id path parameter.
func (s *Server) meterID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if err := meter.ValidateMeterID(id); err != nil {
		s.failErr(c, err)
		return "", false
	}
	return id, true
}

// page reads limit (1..1000, default 100) and cursor.
func (s *Server) page(c *gin.Context) (size, bookmark string, ok bool) {
	size = c.DefaultQuery("limit", "100")
	if n, err := strconv.Atoi(size); err != nil || n < 1 || n > 1000 {
		fail(c, problem(string(meter.CodeMalformed), "limit must be an integer from 1 to 1000"))
		return "", "", false
	}
	bookmark, err := decodeCursor(c.Query("cursor"))
	if err != nil {
		fail(c, problem(string(meter.CodeMalformed), "cursor is not one this API returned as next"))
		return "", "", false
	}
	return size, bookmark, true
}

func encodeCursor(bookmark string) string {
	if bookmark == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(bookmark))
}

func decodeCursor(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	return string(b), err
}

// maxBlockWait bounds how long a read waits for the NMI's peer to catch up.
const maxBlockWait = 10 * time.Second

// awaitMinBlock honours ?minBlock=N: the read waits until this NMI's peer
// has committed block N, so a client that wrote through any NMI reads its
// write here.
func (s *Server) awaitMinBlock(c *gin.Context) bool {
	q := c.Query("minBlock")
	if q == "" {
		return true
	}
	block, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		fail(c, problem(string(meter.CodeMalformed), "minBlock must be a block number"))
		return false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), maxBlockWait)
	defer cancel()
	if err := s.opts.Ledger.AwaitBlock(ctx, block); err != nil {
		s.failErr(c, err)
		return false
	}
	return true
}

// evaluate answers 200 with the result of a read-only transaction, run as
// the caller's role.
func evaluate[T any](s *Server, c *gin.Context, tx string, args ...string) {
	var v T
	if s.evaluateInto(c, &v, tx, args...) {
		c.JSON(http.StatusOK, v)
	}
}

func (s *Server) evaluateInto(c *gin.Context, v any, tx string, args ...string) bool {
	out, err := s.opts.Ledger.Evaluate(c.Request.Context(), principal(c).Role, tx, args...)
	if err != nil {
		s.failErr(c, err)
		return false
	}
	if err := json.Unmarshal(out, v); err != nil {
		s.failErr(c, fmt.Errorf("decode %s result: %w", tx, err))
		return false
	}
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for values this package built
	}
	return b
}
