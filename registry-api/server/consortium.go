package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
)

// withdrawPreEnrolment removes one of the operator's NMI's pre-enrolments.
func (s *Server) withdrawPreEnrolment(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	r, err := s.submit(c, api.RoleOperator, wire.TxWithdrawPreEnrolment, id)
	if err != nil {
		s.failErr(c, err)
		return
	}
	pre := new(meter.PreEnrolment)
	if err := json.Unmarshal(r.Result, pre); err != nil {
		s.failErr(c, fmt.Errorf("decode WithdrawPreEnrolment result: %w", err))
		return
	}
	c.JSON(http.StatusOK, api.PreEnrolmentReceipt{PreEnrolment: pre, Tx: api.Tx{TxID: r.TxID, Block: r.Block}})
}

// voteConsortium casts the operator's NMI's vote for a consortium action.
// The vote that makes the majority takes the action; its transaction then
// needs the endorsement of a majority of the NMIs' peers, which the
// gateway gathers.
func (s *Server) voteConsortium(c *gin.Context) {
	var req api.VoteRequest
	if err := decodeJSON(c, &req); err != nil {
		s.bodyError(c, err)
		return
	}
	if err := checkVote(req.Action, req.MeterID); err != nil {
		s.failErr(c, err)
		return
	}
	if req.Action == api.ActionRevoke {
		if _, err := meter.ParseReason(req.Reason); err != nil {
			s.failErr(c, err)
			return
		}
	} else if req.Reason == "" {
		s.failErr(c, meter.Errorf(meter.CodeMalformed, "a release needs a reason"))
		return
	}
	r, err := s.submit(c, api.RoleOperator, wire.TxVoteConsortium, req.Action, req.MeterID, req.Reason)
	if err != nil {
		s.failErr(c, err)
		return
	}
	tally := new(api.Tally)
	if err := json.Unmarshal(r.Result, tally); err != nil {
		s.failErr(c, fmt.Errorf("decode VoteConsortium result: %w", err))
		return
	}
	receipt := api.VoteReceipt{Tally: tally}
	if !r.ReadOnly {
		receipt.Tx = api.Tx{TxID: r.TxID, Block: r.Block}
	}
	c.JSON(http.StatusOK, receipt)
}

// listVotes lists the votes cast so far for an action on a meter ID.
func (s *Server) listVotes(c *gin.Context) {
	action, id := c.Param("action"), c.Param("id")
	if err := checkVote(action, id); err != nil {
		s.failErr(c, err)
		return
	}
	if !s.awaitMinBlock(c) {
		return
	}
	var votes []api.Vote
	if !s.evaluateInto(c, &votes, wire.TxGetVotes, action, id) {
		return
	}
	if votes == nil {
		votes = []api.Vote{}
	}
	c.JSON(http.StatusOK, api.VoteList{Votes: votes})
}

func checkVote(action, meterID string) error {
	if action != api.ActionRevoke && action != api.ActionRelease {
		return meter.Errorf(meter.CodeMalformed, "action %q is unknown: use %s or %s", action, api.ActionRevoke, api.ActionRelease)
	}
	return meter.ValidateMeterID(meterID)
}
