package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// Meter types and legally relevant software. The certifying NMI's operator
// records a type and approves and withdraws its software versions; the
// chaincode lets only that NMI change the type (NOT_OWNER otherwise), under
// the type's key-level policy. Any NMI's ingest credential delivers a
// meter's update statements: the meter's signature, not the deliverer,
// makes a statement authentic.

func (s *Server) recordType(c *gin.Context) {
	var req api.TypeRecordRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	// The chaincode checks the same rules for the same NMI, the namespace
	// of the type ID included.
	if err := req.Validate(s.opts.NMI); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitType(c, http.StatusCreated, wire.TxRecordMeterType, func(mt *meter.MeterType) string { return mt.RecordedTx },
		string(mustJSON(req)))
}

func (s *Server) approveSoftware(c *gin.Context) {
	id, ok := s.typeID(c)
	if !ok {
		return
	}
	var req api.ApproveRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := req.Validate(""); err != nil {
		s.failErr(c, err)
		return
	}
	if !s.optionalTime(c, "approvedFrom", req.ApprovedFrom) {
		return
	}
	approvedIn := func(mt *meter.MeterType) string {
		if v := mt.Version(req.ID); v != nil {
			return v.ApprovedTx
		}
		return mt.UpdatedTx
	}
	s.submitType(c, http.StatusOK, wire.TxApproveSoftware, approvedIn, id, req.ID, req.Checksum, req.ApprovedFrom)
}

func (s *Server) withdrawSoftware(c *gin.Context) {
	id, ok := s.typeID(c)
	if !ok {
		return
	}
	var req api.WithdrawRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{{"softwareId", req.SoftwareID, meter.MaxMetadataLen}, {"reason", req.Reason, meter.MaxWithdrawalReason}} {
		switch {
		case f.value == "":
			fail(c, problem(string(meter.CodeMalformed), f.name+" is required"))
			return
		case len(f.value) > f.max:
			fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("%s is %d bytes, at most %d allowed", f.name, len(f.value), f.max)))
			return
		}
		if err := meter.CheckText(f.name, f.value); err != nil {
			s.failErr(c, err)
			return
		}
	}
	if !s.optionalTime(c, "from", req.From) {
		return
	}
	withdrawnIn := func(mt *meter.MeterType) string {
		if v := mt.Version(req.SoftwareID); v != nil && v.Withdrawal != nil {
			return v.Withdrawal.TxID
		}
		return mt.UpdatedTx
	}
	s.submitType(c, http.StatusOK, wire.TxWithdrawSoftware, withdrawnIn, id, req.SoftwareID, req.Reason, req.From)
}

// optionalTime refuses a field that is set but not RFC 3339.
func (s *Server) optionalTime(c *gin.Context, name, value string) bool {
	if value == "" {
		return true
	}
	if _, err := meter.ParseTime(value); err != nil {
		fail(c, problem(string(meter.CodeMalformed), name+": "+err.Error()))
		return false
	}
	return true
}

// submitType submits a transaction that answers with a meter type's
// record. earlier names, for a repeated request the ledger answers without
// writing, the transaction that did what it asks.
func (s *Server) submitType(c *gin.Context, status int, tx string, earlier func(*meter.MeterType) string, args ...string) {
	r, err := s.submit(c, api.RoleOperator, tx, args...)
	if err != nil {
		s.failErr(c, err)
		return
	}
	mt := new(meter.MeterType)
	if err := json.Unmarshal(r.Result, mt); err != nil {
		s.failErr(c, fmt.Errorf("decode %s result: %w", tx, err))
		return
	}
	if r.ReadOnly {
		c.JSON(http.StatusOK, api.TypeReceipt{Type: mt, Tx: s.committedTx(c, earlier(mt)), Duplicate: true})
		return
	}
	if status == http.StatusCreated {
		c.Header("Location", api.Prefix+"/types/"+mt.ID)
	}
	c.JSON(status, api.TypeReceipt{Type: mt, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

func (s *Server) assignType(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	var req api.AssignTypeRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := meter.ValidateTypeID(req.TypeID); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitMeter(c, http.StatusOK, wire.TxAssignMeterType, id, req.TypeID)
}

// typeAssignedIn names the transaction that gave the meter its type: the
// first version of its record with that type.
func (s *Server) typeAssignedIn(c *gin.Context, m *meter.Meter) api.Tx {
	var versions []api.MeterVersion
	out, err := s.opts.Ledger.Evaluate(c.Request.Context(), principal(c).Role, wire.TxGetMeterHistory, m.ID)
	if err == nil {
		err = json.Unmarshal(out, &versions)
	}
	for _, v := range versions {
		if v.Meter != nil && v.Meter.TypeID == m.TypeID {
			return s.committedTx(c, v.TxID)
		}
	}
	s.log.Warn("the transaction that assigned a meter's type is not in its history", "meter", m.ID, "type", m.TypeID, "err", err)
	return api.Tx{}
}

func (s *Server) getType(c *gin.Context) {
	if id, ok := s.typeID(c); ok && s.awaitMinBlock(c) {
		evaluate[meter.MeterType](s, c, wire.TxGetMeterType, id)
	}
}

func (s *Server) typeHistory(c *gin.Context) {
	if id, ok := s.typeID(c); ok && s.awaitMinBlock(c) {
		evaluate[[]api.TypeVersion](s, c, wire.TxGetMeterTypeHistory, id)
	}
}

func (s *Server) listTypes(c *gin.Context) {
	size, bookmark, ok := s.page(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	var page wire.TypePage
	if !s.evaluateInto(c, &page, wire.TxListMeterTypes, c.Query("nmi"), size, bookmark) {
		return
	}
	if page.Types == nil {
		page.Types = []*meter.MeterType{}
	}
	c.JSON(http.StatusOK, api.TypeList{Types: page.Types, Next: encodeCursor(page.Bookmark)})
}

func (s *Server) typeMeters(c *gin.Context) {
	id, ok := s.typeID(c)
	if !ok {
		return
	}
	size, bookmark, ok := s.page(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	var page wire.MeterPage
	if !s.evaluateInto(c, &page, wire.TxListTypeMeters, id, size, bookmark) {
		return
	}
	if page.Meters == nil {
		page.Meters = []*meter.Meter{}
	}
	c.JSON(http.StatusOK, api.MeterList{Meters: page.Meters, Next: encodeCursor(page.Bookmark)})
}

// typeID reads and checks the :id path parameter of a type route.
func (s *Server) typeID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if err := meter.ValidateTypeID(id); err != nil {
		s.failErr(c, err)
		return "", false
	}
	return id, true
}

// submitSoftwareUpdate delivers a meter's update statement. The ledger
// judges it: an accepted statement is recorded in the meter's software
// log (201); exactly the bytes recorded before are a duplicate (200,
// nothing written); a refused one is committed all the same, as the
// evidence of what was delivered, and answered as a refused single
// measurement is: the problem of its code, naming that transaction.
func (s *Server) submitSoftwareUpdate(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	var su api.SoftwareUpdate
	if err := decodeJSON(c, &su); err != nil {
		s.bodyError(c, err)
		return
	}
	if su.MeterID == "" {
		su.MeterID = id
	}
	switch {
	case su.MeterID != id:
		fail(c, problem(string(meter.CodeMeterMismatch), fmt.Sprintf("the body names meter %q but was sent to meter %q", su.MeterID, id)))
		return
	case len(su.Statement) == 0 || len(su.Signature) == 0:
		fail(c, problem(string(meter.CodeMalformed), "statement and signature (both base64) are required"))
		return
	case len(su.Statement) > meter.MaxStatementBytes:
		fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("the update statement is %d bytes, at most %d allowed", len(su.Statement), meter.MaxStatementBytes)))
		return
	}
	r, err := s.submit(c, api.RoleIngest, wire.TxSubmitSoftwareUpdate, id, b64(su.Statement), b64(su.Signature))
	if err != nil {
		s.failErr(c, err)
		return
	}
	var out meter.UpdateOutcome
	if err := json.Unmarshal(r.Result, &out); err != nil {
		s.failErr(c, fmt.Errorf("decode %s result: %w", wire.TxSubmitSoftwareUpdate, err))
		return
	}
	switch out.Outcome {
	case meter.UpdateAccepted:
		c.JSON(http.StatusCreated, api.SoftwareUpdateReceipt{MeterID: id, Report: out.Report, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
	case meter.UpdateDuplicate:
		var tx api.Tx
		if out.Report != nil {
			tx = s.committedTx(c, out.Report.TxID)
		}
		c.JSON(http.StatusOK, api.SoftwareUpdateReceipt{MeterID: id, Report: out.Report, Tx: tx, Duplicate: true})
	case meter.UpdateRefused:
		p := problem(string(out.Code), out.Reason)
		p.TxID = r.TxID
		fail(c, p)
	default:
		s.failErr(c, fmt.Errorf("%s answered the outcome %q", wire.TxSubmitSoftwareUpdate, out.Outcome))
	}
}

// meterSoftware answers a meter's type, current software, the software its
// record remembers and its software log. The record and the log are two
// reads; they are read again while they disagree (an update committed
// between them).
func (s *Server) meterSoftware(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	for range 3 {
		var m meter.Meter
		if !s.evaluateInto(c, &m, wire.TxGetMeter, id) {
			return
		}
		var log []*meter.UpdateReport
		if !s.evaluateInto(c, &log, wire.TxGetSoftwareLog, id) {
			return
		}
		recorded := 0
		if m.Updates != nil {
			recorded = m.Updates.Count
		}
		if len(log) == recorded {
			c.JSON(http.StatusOK, softwareOf(&m, log))
			return
		}
	}
	s.failErr(c, fmt.Errorf("%w: the record and the software log of meter %s kept changing between two reads", ledger.ErrConflict, id))
}

// softwareOf is what a meter's record and log say of its software. A meter
// that never updated ran its registration's software from its
// registration on.
func softwareOf(m *meter.Meter, log []*meter.UpdateReport) api.MeterSoftware {
	out := api.MeterSoftware{MeterID: m.ID, TypeID: m.TypeID, Current: m.CurrentSoftware(), Installed: m.Software, Log: log}
	if len(out.Installed) == 0 {
		out.Installed = []meter.Installed{{Software: m.CurrentSoftware(), Since: m.RegisteredAt, TxID: m.RegisteredTx}}
	}
	if out.Log == nil {
		out.Log = []*meter.UpdateReport{}
	}
	return out
}
