package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/contract"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
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
	// A payload that cannot be a measurement is refused here, before it
	// costs a transaction.
	if _, err := meter.ParseMeasurement(sm.Payload); err != nil {
		s.failErr(c, err)
		return
	}
	r, err := s.submit(c, api.RoleIngest, "SubmitMeasurement", id, b64(sm.Payload), b64(sm.Signature))
	if err != nil {
		s.failErr(c, err)
		return
	}
	var res meter.ItemResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		s.failErr(c, fmt.Errorf("decode SubmitMeasurement result: %w", err))
		return
	}
	if res.Outcome == meter.OutcomeDuplicate {
		c.JSON(http.StatusOK, api.MeasurementReceipt{MeterID: res.MeterID, Seq: res.Seq, Tx: s.committedTx(c, res.TxID), Duplicate: true})
		return
	}
	c.JSON(http.StatusCreated, api.MeasurementReceipt{MeterID: res.MeterID, Seq: res.Seq, KeyVersion: res.KeyVersion,
		Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

// submitBatch takes a concentrator's delivery. Each item is judged on the
// ledger on its own; the answer lists every outcome, and refused items stay
// on the ledger as evidence.
func (s *Server) submitBatch(c *gin.Context) {
	var batch api.MeasurementBatch
	if err := decodeJSON(c, &batch); err != nil {
		s.bodyError(c, err)
		return
	}
	n := len(batch.Measurements)
	switch {
	case n == 0:
		fail(c, problem(string(meter.CodeMalformed), "measurements is empty"))
		return
	case n > api.MaxMeasurementBatch:
		fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("the batch holds %d measurements; at most %d per request", n, api.MaxMeasurementBatch)))
		return
	}
	for i, m := range batch.Measurements {
		if m.MeterID == "" || len(m.Payload) == 0 || len(m.Signature) == 0 {
			fail(c, problem(string(meter.CodeMalformed), fmt.Sprintf("measurement %d lacks meterId, payload or signature", i)))
			return
		}
	}
	r, err := s.submit(c, api.RoleIngest, "SubmitMeasurements", string(mustJSON(batch.Measurements)))
	if err != nil {
		s.failErr(c, err)
		return
	}
	var res meter.BatchResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		s.failErr(c, fmt.Errorf("decode SubmitMeasurements result: %w", err))
		return
	}
	out := api.BatchReceipt{Accepted: res.Accepted, Rejected: res.Rejected, Duplicates: res.Duplicates, Items: res.Items}
	if !r.ReadOnly {
		out.Tx = api.Tx{TxID: r.TxID, Block: r.Block}
	}
	c.JSON(http.StatusOK, out)
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
	evaluate[meter.Verification](s, c, "VerifyMeasurement", sm.MeterID, b64(sm.Payload), b64(sm.Signature))
}

func (s *Server) listMeasurements(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	size, bookmark, ok := s.page(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	var page contract.MeasurementPage
	if s.evaluateInto(c, &page, "GetMeasurements", id, c.Query("from"), c.Query("to"), size, bookmark) {
		c.JSON(http.StatusOK, api.MeasurementList{Measurements: page.Measurements, Next: encodeCursor(page.Bookmark)})
	}
}

func (s *Server) listRejections(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	size, bookmark, ok := s.page(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	var page contract.RejectionPage
	if s.evaluateInto(c, &page, "GetRejections", id, size, bookmark) {
		c.JSON(http.StatusOK, api.RejectionList{Rejections: page.Rejections, Next: encodeCursor(page.Bookmark)})
	}
}

func (s *Server) consortium(c *gin.Context) {
	out, err := s.opts.Ledger.Consortium(c.Request.Context())
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
