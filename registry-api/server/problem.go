package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
)

// statusOf is the one mapping from a refusal code to its HTTP status.
var statusOf = map[string]int{
	string(meter.CodeMalformed):       http.StatusBadRequest,
	string(meter.CodeTooLarge):        http.StatusRequestEntityTooLarge,
	string(meter.CodeUnsupportedKey):  http.StatusUnprocessableEntity,
	string(meter.CodeInvalidKey):      http.StatusUnprocessableEntity,
	string(meter.CodeKeyInUse):        http.StatusConflict,
	string(meter.CodeMeterExists):     http.StatusConflict,
	string(meter.CodeMeterNotFound):   http.StatusNotFound,
	string(meter.CodeMeterRevoked):    http.StatusConflict,
	string(meter.CodeNotOnHold):       http.StatusConflict,
	string(meter.CodeBadSignature):    http.StatusUnprocessableEntity,
	string(meter.CodeMeterMismatch):   http.StatusUnprocessableEntity,
	string(meter.CodeReplay):          http.StatusConflict,
	string(meter.CodeSeqOutOfRange):   http.StatusUnprocessableEntity,
	string(meter.CodeImplausibleTime): http.StatusUnprocessableEntity,
	// The endorsing NMIs refuse this registry's clock: the operator's to fix.
	string(meter.CodeClockSkew):           http.StatusServiceUnavailable,
	string(meter.CodeForbidden):           http.StatusForbidden,
	string(meter.CodeNotOwner):            http.StatusForbidden,
	string(meter.CodePreEnrolled):         http.StatusConflict,
	string(meter.CodeIdentityMismatch):    http.StatusUnprocessableEntity,
	string(meter.CodePreEnrolmentExpired): http.StatusConflict,
	string(meter.CodeNotMember):           http.StatusForbidden,
	string(meter.CodeInternal):            http.StatusInternalServerError,
	string(meter.CodeTypeExists):          http.StatusConflict,
	string(meter.CodeTypeNotFound):        http.StatusNotFound,
	string(meter.CodeVersionExists):       http.StatusConflict,
	string(meter.CodeVersionNotFound):     http.StatusNotFound,
	string(meter.CodeVersionWithdrawn):    http.StatusConflict,
	string(meter.CodeSoftwareMismatch):    http.StatusUnprocessableEntity,
	string(meter.CodeSoftwareNotApproved): http.StatusUnprocessableEntity,
	string(agreement.CodePeriodExists):    http.StatusConflict,
	string(agreement.CodePeriodNotFound):  http.StatusNotFound,
	string(agreement.CodePeriodMismatch):  http.StatusUnprocessableEntity,
	string(agreement.CodeAgreementExists): http.StatusConflict,
	string(agreement.CodeNoAgreement):     http.StatusConflict,
	string(agreement.CodeTariffMismatch):  http.StatusUnprocessableEntity,
	string(agreement.CodeKeyIssued):       http.StatusConflict,
	string(agreement.CodeBillExists):      http.StatusConflict,
	string(agreement.CodeSlotsMismatch):   http.StatusUnprocessableEntity,
	api.CodeUnauthenticated:               http.StatusUnauthorized,
	api.CodeNotFound:                      http.StatusNotFound,
	api.CodeMethodNotAllowed:              http.StatusMethodNotAllowed,
	api.CodeUnsupportedMedia:              http.StatusUnsupportedMediaType,
	api.CodeIdempotencyConflict:           http.StatusConflict,
	api.CodeUnavailable:                   http.StatusServiceUnavailable,
	api.CodeTimeout:                       http.StatusGatewayTimeout,
	api.CodeOutcomeUnknown:                http.StatusGatewayTimeout,
	api.CodeTxInvalid:                     http.StatusInternalServerError,
	// Concurrent updates that kept conflicting: transient, retry.
	api.CodeConflict: http.StatusServiceUnavailable,
	// The registry's disk is full: the operator's to fix.
	api.CodeStorageFull: http.StatusServiceUnavailable,
}

var titles = map[int]string{
	http.StatusBadRequest:            "Malformed request",
	http.StatusUnauthorized:          "Authentication required",
	http.StatusForbidden:             "Not allowed",
	http.StatusNotFound:              "Not found",
	http.StatusMethodNotAllowed:      "Method not allowed",
	http.StatusConflict:              "Conflict with the ledger's state",
	http.StatusRequestEntityTooLarge: "Too large",
	http.StatusUnsupportedMediaType:  "Unsupported media type",
	http.StatusUnprocessableEntity:   "Refused",
	http.StatusInternalServerError:   "Internal error",
	http.StatusServiceUnavailable:    "Fabric network unavailable",
	http.StatusGatewayTimeout:        "Timed out",
}

// problem builds the body for a code and a message a person can act on.
func problem(code, detail string) api.Problem {
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	title := titles[status]
	if code == api.CodeIdempotencyConflict {
		title = "Idempotency-Key conflict"
	}
	return api.Problem{Type: api.ProblemType(code), Title: title, Status: status, Detail: detail, Code: code}
}

// problemFor maps any error of a request to its problem: chaincode refusals
// by their code, ledger and request failures by kind.
func problemFor(err error) api.Problem {
	var refusal *meter.Error
	var invalid *ledger.InvalidError
	var unknown *ledger.OutcomeUnknownError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &unknown):
		p := problem(api.CodeOutcomeUnknown, "transaction "+unknown.TxID+" was sent to the ordering service and its outcome is not known yet; "+
			"retry with the same Idempotency-Key (the registry then asks about this transaction, it sends no other), or ask GET "+
			api.Prefix+"/transactions/"+unknown.TxID)
		p.TxID = unknown.TxID
		return p
	case errors.As(err, &refusal):
		return problem(string(refusal.Code), refusal.Message)
	case errors.As(err, &tooBig):
		return problem(string(meter.CodeTooLarge), "the request body exceeds the limit of this endpoint")
	case errors.Is(err, ledger.ErrConflict):
		return problem(api.CodeConflict, "concurrent updates of the same records kept conflicting; retry the request (with the same Idempotency-Key)")
	case errors.Is(err, ledger.ErrUnavailable):
		return problem(api.CodeUnavailable, err.Error()+"; retry later (with the same Idempotency-Key)")
	case errors.Is(err, context.DeadlineExceeded):
		return problem(api.CodeTimeout, "the request did not complete in time; retry it with the same Idempotency-Key")
	case errors.As(err, &invalid):
		p := problem(api.CodeTxInvalid, invalid.Error()+"; nothing was written")
		p.TxID = invalid.TxID
		return p
	case idempotency.IsFull(err):
		// The registry notes a transaction before it sends it: a note it
		// cannot write means nothing was sent.
		p := problem(api.CodeStorageFull, "the registry's disk is full: it could not note the transaction before sending it, and did not send it; retry later (with the same Idempotency-Key)")
		p.Title = "Registry storage full"
		return p
	case errors.Is(err, idempotency.ErrInFlight):
		return problem(api.CodeIdempotencyConflict, err.Error())
	case errors.Is(err, idempotency.ErrReused):
		p := problem(api.CodeIdempotencyConflict, err.Error())
		p.Status = http.StatusUnprocessableEntity
		return p
	}
	return problem(string(meter.CodeInternal), "internal error")
}

// retryAfter is the pause (seconds) a client should take before retrying
// a request answered with a transient problem.
var retryAfter = map[string]string{
	api.CodeUnavailable:    "2",
	api.CodeConflict:       "1",
	api.CodeTimeout:        "5",
	api.CodeOutcomeUnknown: "5",
	api.CodeStorageFull:    "10",
}

// fail answers with a problem and stops the handler chain.
func fail(c *gin.Context, p api.Problem) {
	p.Instance = c.Request.URL.Path
	if after, ok := retryAfter[p.Code]; ok {
		c.Header("Retry-After", after)
	}
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// failErr answers with the problem of err, logging what the client does not see.
func (s *Server) failErr(c *gin.Context, err error) {
	p := problemFor(err)
	if p.Status >= 500 {
		s.log.Error("request failed", "route", c.FullPath(), "err", err)
	}
	fail(c, p)
}
