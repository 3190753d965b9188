package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/registry-api/api"
)

// The billing endpoints record the statements of privacy-preserving billing
// (pki-chaincode/billing, the chaincode's "billing" contract). A statement's
// authority is its party's signature, so the registry checks what it can
// without the ledger (with the chaincode's own rules) and submits as the
// caller's role.

func (s *Server) bindPeriod(c *gin.Context) {
	var req api.BillingPeriodRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if _, err := req.Check(); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitBilling(c, req.Statement.MeterID, req.Statement.Period, agreement.TxBindPeriod, string(mustJSON(req)))
}

func (s *Server) agreeTariff(c *gin.Context) {
	id, period, ok := s.billingPeriod(c)
	if !ok {
		return
	}
	var req api.TariffAgreementRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if _, err := req.Check(id, period); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitBilling(c, id, period, agreement.TxAgreeTariff, id, period, string(mustJSON(req)))
}

func (s *Server) recordKeyIssued(c *gin.Context) {
	id, period, ok := s.billingPeriod(c)
	if !ok {
		return
	}
	var req api.KeyIssuedRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := req.Check(id, period); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitBilling(c, id, period, agreement.TxRecordKeyIssued, id, period, string(mustJSON(req)))
}

func (s *Server) recordBill(c *gin.Context) {
	id, period, ok := s.billingPeriod(c)
	if !ok {
		return
	}
	var req api.BillRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := req.Check(id, period); err != nil {
		s.failErr(c, err)
		return
	}
	s.submitBilling(c, id, period, agreement.TxRecordBill, id, period, string(mustJSON(req)))
}

// submitBilling submits a billing transaction as the caller's role and
// answers 201 with the period's record, at the period's location.
func (s *Server) submitBilling(c *gin.Context, id, period, tx string, args ...string) {
	r, err := s.submit(c, principal(c).Role, tx, args...)
	if err != nil {
		s.failErr(c, err)
		return
	}
	rec := new(agreement.Record)
	if err := json.Unmarshal(r.Result, rec); err != nil {
		s.failErr(c, fmt.Errorf("decode %s result: %w", tx, err))
		return
	}
	c.Header("Location", api.Prefix+"/billing/periods/"+id+"/"+period)
	c.JSON(http.StatusCreated, api.BillingReceipt{Record: rec, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

func (s *Server) getBillingPeriod(c *gin.Context) {
	if id, period, ok := s.billingPeriod(c); ok && s.awaitMinBlock(c) {
		evaluate[agreement.Record](s, c, agreement.TxGetBillingPeriod, id, period)
	}
}

// billingPeriod reads and checks the :id and :period path parameters.
func (s *Server) billingPeriod(c *gin.Context) (id, period string, ok bool) {
	if id, ok = s.meterID(c); !ok {
		return "", "", false
	}
	period = c.Param("period")
	if err := agreement.ValidatePeriod(period); err != nil {
		s.failErr(c, err)
		return "", "", false
	}
	return id, period, true
}
