package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// signedFor reads one signed measurement for the meter of the path; the
// body may repeat the meter ID, but not name another.
func (s *Server) signedFor(c *gin.Context, id string) (meter.SignedMeasurement, bool) {
	var sm meter.SignedMeasurement
	if err := decodeJSON(c, &sm); err != nil {
		s.bodyError(c, err)
		return sm, false
	}
	if sm.MeterID == "" {
		sm.MeterID = id
	}
	if sm.MeterID != id {
		fail(c, problem(string(meter.CodeMeterMismatch), fmt.Sprintf("the body names meter %q but was sent to meter %q", sm.MeterID, id)))
		return sm, false
	}
	if len(sm.Payload) == 0 || len(sm.Signature) == 0 {
		fail(c, problem(string(meter.CodeMalformed), "payload and signature (both base64) are required"))
		return sm, false
	}
	return sm, true
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (s *Server) submitMeasurement(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	sm, ok := s.signedFor(c, id)
	if !ok {
		return
	}
	// What the chaincode would refuse for its form alone is refused here,
	// by the chaincode's own rule, before the delivery shares a
	// transaction with other clients' deliveries.
	m, err := sm.CheckForm()
	if err != nil {
		s.failErr(c, err)
		return
	}
	res, r, err := s.deliverSingle(c, sm, m)
	if err == nil {
		results := []meter.ItemResult{res}
		err = s.replays(c.Request.Context(), []meter.SignedMeasurement{sm}, results)
		res = results[0]
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	switch res.Outcome {
	case meter.OutcomeAccepted:
		c.JSON(http.StatusCreated, api.MeasurementReceipt{MeterID: res.MeterID, Seq: res.Seq, KeyVersion: res.KeyVersion,
			Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
	case meter.OutcomeDuplicate:
		tx := api.Tx{TxID: r.TxID, Block: r.Block}
		if !r.ReadOnly || r.TxID != res.TxID {
			tx = s.acceptedIn(c, sm, m.Seq, res.TxID)
		}
		c.JSON(http.StatusOK, api.MeasurementReceipt{MeterID: id, Seq: m.Seq, Tx: tx, Duplicate: true})
	default:
		p := problem(string(res.Code), res.Reason)
		p.TxID = r.TxID
		fail(c, p)
	}
}

// replays looks again at the items the chaincode refused as replays: the
// seq was accepted before, and if it was this very reading (a re-delivery
// the chaincode's short memory no longer holds), the index of the blocks
// names the transaction that accepted it, and the item is a duplicate. The
// index is asked once it has read every block the peer holds, for the
// acceptance is in one of them; an index that cannot get there within
// IndexWait (rebuilding after its loss, say) gets the request answered 503,
// to be retried, rather than a reading that was accepted called refused.
func (s *Server) replays(ctx context.Context, items []meter.SignedMeasurement, results []meter.ItemResult) error {
	var replayed []int
	for i, r := range results {
		if r.Outcome == meter.OutcomeRejected && r.Code == meter.CodeReplay {
			replayed = append(replayed, i)
		}
	}
	if len(replayed) == 0 {
		return nil
	}
	if err := s.indexReadsPeer(ctx, true); err != nil {
		return err
	}
	for _, i := range replayed {
		txID, _, found, err := s.opts.Readings.Accepted(items[i], results[i].Seq)
		if err != nil {
			return err
		}
		if found {
			results[i] = meter.ItemResult{Index: results[i].Index, MeterID: results[i].MeterID, Seq: results[i].Seq,
				Outcome: meter.OutcomeDuplicate, TxID: txID}
		}
	}
	return nil
}

// deliverSingle gets one delivery's outcome: the earlier attempt's, for a
// retry of a request that recorded one; from the index, for exactly the
// evidence accepted before; otherwise from a grouped transaction.
func (s *Server) deliverSingle(c *gin.Context, sm meter.SignedMeasurement, m meter.Measurement) (meter.ItemResult, *ledger.Receipt, error) {
	claim := claimOf(c)
	if claim != nil && len(claim.pending) > 0 {
		r, ref, err := s.settle(c, wire.TxSubmitPacked, claim, 0)
		var invalid *ledger.InvalidError
		switch {
		case err == nil:
			res, err := itemOf(r, ref.Item, sm, m)
			return res, r, err
		case !errors.As(err, &invalid):
			return meter.ItemResult{}, nil, err
		}
		// Committed as invalid, so nothing was written: deliver anew.
		return s.batcher.deliver(c.Request.Context(), sm, claim)
	}
	s.indexCaughtUp(c.Request.Context())
	if txID, block, found, err := s.opts.Readings.Accepted(sm, m.Seq); err == nil && found {
		return meter.ItemResult{MeterID: sm.MeterID, Seq: m.Seq, Outcome: meter.OutcomeDuplicate, TxID: txID},
			&ledger.Receipt{TxID: txID, Block: block, ReadOnly: true}, nil
	}
	return s.batcher.deliver(c.Request.Context(), sm, claim)
}

// itemOf reads one item's outcome from a batch transaction's receipt.
func itemOf(r *ledger.Receipt, index int, sm meter.SignedMeasurement, m meter.Measurement) (meter.ItemResult, error) {
	var o wire.Outcome
	if err := json.Unmarshal(r.Result, &o); err != nil {
		return meter.ItemResult{}, fmt.Errorf("decode the batch outcome: %w", err)
	}
	for _, e := range o.Exceptions {
		if e.Index == index {
			return e, nil
		}
	}
	return meter.ItemResult{Index: index, MeterID: sm.MeterID, Seq: m.Seq, Outcome: meter.OutcomeAccepted, KeyVersion: o.KeyVersions[sm.MeterID]}, nil
}

// acceptedIn names the transaction that accepted a re-delivered reading:
// the ledger's answer when it names it, else this NMI's index of the
// blocks, which may need a moment to reach the block its peer committed.
func (s *Server) acceptedIn(c *gin.Context, sm meter.SignedMeasurement, seq uint64, txID string) api.Tx {
	if txID != "" {
		return s.committedTx(c, txID)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	payloadOnly := meter.SignedMeasurement{MeterID: sm.MeterID, Payload: sm.Payload}
	for {
		next := s.opts.Readings.Next()
		if id, block, found, err := s.opts.Readings.Accepted(payloadOnly, seq); err == nil && found {
			return api.Tx{TxID: id, Block: block}
		}
		if s.opts.Readings.Await(ctx, next) != nil {
			s.log.Warn("the transaction of a duplicate is not in the index yet", "meter", sm.MeterID, "seq", seq)
			return api.Tx{}
		}
	}
}

// submitBatch takes a concentrator's delivery. Each item is judged on the
// ledger on its own; the answer lists every outcome, and refused items stay
// on the ledger as evidence (in the transaction's outcome). Items whose exact
// evidence the index holds as accepted are answered as duplicates without
// being sent again.
func (s *Server) submitBatch(c *gin.Context) {
	var batch api.MeasurementBatch
	if err := decodeJSON(c, &batch); err != nil {
		s.bodyError(c, err)
		return
	}
	items := batch.Measurements
	n := len(items)
	switch {
	case n == 0:
		fail(c, problem(string(meter.CodeMalformed), "measurements is empty"))
		return
	case n > api.MaxMeasurementBatch:
		fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("the batch holds %d measurements; at most %d per request", n, api.MaxMeasurementBatch)))
		return
	}
	for i, m := range items {
		if m.MeterID == "" || len(m.Payload) == 0 || len(m.Signature) == 0 {
			fail(c, problem(string(meter.CodeMalformed), fmt.Sprintf("measurement %d lacks meterId, payload or signature", i)))
			return
		}
	}
	out, err := s.deliverBatch(c, items)
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) deliverBatch(c *gin.Context, items []meter.SignedMeasurement) (*api.BatchReceipt, error) {
	results := make([]meter.ItemResult, len(items))
	// Each payload is parsed once, here.
	parsed := make([]meter.Measurement, len(items))
	for i := range items {
		parsed[i], _ = meter.ParseMeasurement(items[i].Payload)
	}
	known := func(i int) bool {
		m := parsed[i]
		if m.Seq == 0 || m.MeterID != items[i].MeterID {
			return false
		}
		txID, _, found, err := s.opts.Readings.Accepted(items[i], m.Seq)
		if err == nil && found {
			results[i] = meter.ItemResult{Index: i, MeterID: items[i].MeterID, Seq: m.Seq, Outcome: meter.OutcomeDuplicate, TxID: txID}
		}
		return err == nil && found
	}
	var r *ledger.Receipt
	var sent []int
	claim := claimOf(c)
	if claim != nil && len(claim.pending) > 0 {
		rec, ref, err := s.settle(c, wire.TxSubmitPacked, claim, 0)
		var invalid *ledger.InvalidError
		switch {
		case err == nil:
			r, sent = rec, ref.Sent
			if sent == nil {
				sent = allIndexes(len(items))
			}
			for i := range items {
				if !slices.Contains(sent, i) {
					known(i)
				}
			}
		case !errors.As(err, &invalid):
			return nil, err
		}
	}
	if r == nil {
		s.indexCaughtUp(c.Request.Context())
		for i := range items {
			if !known(i) {
				sent = append(sent, i)
			}
		}
		if len(sent) > 0 {
			toSend := make([]meter.SignedMeasurement, len(sent))
			for j, i := range sent {
				toSend[j] = items[i]
			}
			packed, err := wire.Pack(toSend)
			if err != nil {
				return nil, err
			}
			ref := pendingRef{Item: -1}
			if len(sent) < len(items) {
				ref.Sent = sent
			}
			var record ledger.Recorder
			if claim != nil {
				record = claim.record(0, ref)
			}
			meters := metersOf(toSend)
			if err := s.locks.lock(c.Request.Context(), meters); err != nil {
				return nil, fmt.Errorf("%w: another transaction of the same meters is still in flight: %w", ledger.ErrUnavailable, err)
			}
			receipts, err := s.submitLedger(c.Request.Context(), api.RoleIngest, wire.TxSubmitPacked, [][]string{{string(packed)}}, record)
			s.locks.unlock(meters)
			var part *ledger.PartError
			if errors.As(err, &part) {
				err = part.Err
			}
			if err != nil {
				return nil, err
			}
			r = receipts[0]
		}
	}
	out := &api.BatchReceipt{Items: results}
	if r != nil {
		toSend := make([]meter.SignedMeasurement, len(sent))
		sentParsed := make([]meter.Measurement, len(sent))
		for j, i := range sent {
			toSend[j], sentParsed[j] = items[i], parsed[i]
		}
		var o wire.Outcome
		if err := json.Unmarshal(r.Result, &o); err != nil {
			return nil, fmt.Errorf("decode the batch outcome: %w", err)
		}
		got, err := o.ExpandParsed(toSend, sentParsed)
		if err != nil {
			return nil, err
		}
		for j, i := range sent {
			got[j].Index = i
			results[i] = got[j]
		}
		if !r.ReadOnly {
			out.Tx = api.Tx{TxID: r.TxID, Block: r.Block}
		}
	}
	if err := s.replays(c.Request.Context(), items, results); err != nil {
		return nil, err
	}
	for i := range results {
		switch results[i].Outcome {
		case meter.OutcomeAccepted:
			out.Accepted++
		case meter.OutcomeRejected:
			out.Rejected++
		case meter.OutcomeDuplicate:
			out.Duplicates++
			if results[i].TxID == "" {
				results[i].TxID = s.acceptedIn(c, meter.SignedMeasurement{MeterID: items[i].MeterID, Payload: items[i].Payload},
					results[i].Seq, "").TxID
			}
		}
	}
	return out, nil
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// verifyMeasurement says whether a signed measurement would be accepted now,
// without storing it.
func (s *Server) verifyMeasurement(c *gin.Context) {
	var sm meter.SignedMeasurement
	if err := decodeJSON(c, &sm); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := meter.ValidateMeterID(sm.MeterID); err != nil {
		s.failErr(c, err)
		return
	}
	if len(sm.Payload) == 0 || len(sm.Signature) == 0 {
		fail(c, problem(string(meter.CodeMalformed), "payload and signature (both base64) are required"))
		return
	}
	evaluate[meter.Verification](s, c, wire.TxVerifyMeasurement, sm.MeterID, b64(sm.Payload), b64(sm.Signature))
}

func (s *Server) listMeasurements(c *gin.Context) {
	q, ok := s.readingsQuery(c)
	if !ok {
		return
	}
	var err error
	if q.From, err = optionalTime(c.Query("from")); err == nil {
		q.To, err = optionalTime(c.Query("to"))
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		fail(c, problem(string(meter.CodeMalformed), "from lies after to"))
		return
	}
	list, next, err := s.opts.Readings.Measurements(c.Request.Context(), q)
	if err != nil {
		s.readingsError(c, err)
		return
	}
	c.JSON(http.StatusOK, api.MeasurementList{Measurements: list, Next: encodeCursor(string(next))})
}

func (s *Server) listRejections(c *gin.Context) {
	q, ok := s.readingsQuery(c)
	if !ok {
		return
	}
	list, next, err := s.opts.Readings.Rejections(q)
	if err != nil {
		s.readingsError(c, err)
		return
	}
	c.JSON(http.StatusOK, api.RejectionList{Rejections: list, Next: encodeCursor(string(next))})
}

// listFindings lists the integrity findings of the registry's index: valid
// transactions of the chaincode it did not believe.
func (s *Server) listFindings(c *gin.Context) {
	size, cursor, ok := s.page(c)
	if !ok || !s.awaitIndex(c) {
		return
	}
	var from []byte
	if cursor != "" {
		from = []byte(cursor)
	}
	list, next, err := s.opts.Readings.Findings(atoi(size), from)
	if err != nil {
		s.readingsError(c, err)
		return
	}
	c.JSON(http.StatusOK, api.FindingList{Findings: list, Next: encodeCursor(string(next))})
}

// readingsQuery reads the meter, page and minBlock of a listing from the
// index; minBlock waits until the index has that block.
func (s *Server) readingsQuery(c *gin.Context) (readings.Query, bool) {
	var q readings.Query
	id := c.Param("id")
	if id != readings.Unattributed {
		var ok bool
		if id, ok = s.meterID(c); !ok {
			return q, false
		}
	}
	size, cursor, ok := s.page(c)
	if !ok {
		return q, false
	}
	q.MeterID, q.Limit = id, atoi(size)
	if cursor != "" {
		q.Cursor = []byte(cursor)
	}
	return q, s.awaitIndex(c)
}

// awaitIndex honours ?minBlock=N on a listing from the index: it waits
// until the index has read block N.
func (s *Server) awaitIndex(c *gin.Context) bool {
	mb := c.Query("minBlock")
	if mb == "" {
		return true
	}
	block, err := strconv.ParseUint(mb, 10, 64)
	if err != nil {
		fail(c, problem(string(meter.CodeMalformed), "minBlock must be a block number"))
		return false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), maxBlockWait)
	defer cancel()
	if err := s.opts.Readings.Await(ctx, block); err != nil {
		s.failErr(c, fmt.Errorf("%w: %w", ledger.ErrUnavailable, err))
		return false
	}
	return true
}

func (s *Server) readingsError(c *gin.Context, err error) {
	if errors.Is(err, readings.ErrCursor) {
		fail(c, problem(string(meter.CodeMalformed), "cursor is not one this listing returned as next"))
		return
	}
	s.failErr(c, err)
}

func optionalTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return meter.ParseTime(v)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (s *Server) consortium(c *gin.Context) {
	out, err := s.opts.Ledger.Consortium(c.Request.Context())
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
