package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/ledger"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// attestations assembles attestation bundles (package network/pkg/proof):
// the attestation transaction's block and the configuration chain, read
// from the NMI's peer. Configuration blocks never change; they are kept.
type attestations struct {
	assembler *proof.Assembler

	mu       sync.Mutex
	inflight map[string]*attestCall
	// joined, if set, is told when a request joins an attestation under
	// way (for tests).
	joined func(meterID string)
}

// attestCall is an attestation under way, which requests for its meter
// share.
type attestCall struct {
	done chan struct{}
	res  readings.Attested
	err  error
}

// share runs attest once for concurrent requests of one meter, detached
// from each of them, and answers all with its result.
func (a *attestations) share(meterID string, attest func() (readings.Attested, error)) (readings.Attested, error) {
	a.mu.Lock()
	if c, ok := a.inflight[meterID]; ok {
		a.mu.Unlock()
		if a.joined != nil {
			a.joined(meterID)
		}
		<-c.done
		return c.res, c.err
	}
	if a.inflight == nil {
		a.inflight = map[string]*attestCall{}
	}
	c := &attestCall{done: make(chan struct{})}
	a.inflight[meterID] = c
	a.mu.Unlock()
	c.res, c.err = attest()
	a.mu.Lock()
	delete(a.inflight, meterID)
	a.mu.Unlock()
	close(c.done)
	return c.res, c.err
}

// attestMeter has the consortium attest a meter now and answers the
// bundle. Requests for one meter while an attestation of it is under way
// share it, and the chaincode lets at most one attestation per meter per
// block be valid (a second one conflicts), so the route cannot flood the
// ledger: each attestation waits for its block. A request never gets an
// older attestation than one made for it: the registry cannot know whether
// the meter changed in a block it has not read yet. Role: any. The
// transaction is submitted with the NMI's operator identity: the proof is
// in the endorsing NMIs' signatures, not in who asked.
func (s *Server) attestMeter(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	withChain, ok := chainParam(c)
	if !ok {
		return
	}
	v, err := s.attest.share(id, func() (readings.Attested, error) {
		// Detached from this request, its context and its Idempotency-Key:
		// others may be waiting for the same attestation, and it must finish
		// even if this client goes away. (A retried request whose answer was
		// not kept attests anew: an attestation changes nothing but the
		// meter's attestation mark.)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), s.opts.WriteTimeout)
		defer cancel()
		receipts, err := s.submitLedger(ctx, api.RoleOperator, wire.TxAttestMeter, [][]string{{id}}, nil)
		var part *ledger.PartError
		if errors.As(err, &part) {
			err = part.Err
		}
		if err != nil {
			return readings.Attested{}, err
		}
		r := receipts[0]
		if err := s.opts.Readings.Await(ctx, r.Block); err != nil {
			return readings.Attested{}, fmt.Errorf("attestation %s committed in block %d, not indexed yet: %w", r.TxID, r.Block, err)
		}
		return readings.Attested{Block: r.Block, TxID: r.TxID}, nil
	})
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.answerBundle(c, http.StatusCreated, id, v, withChain)
}

// latestAttestation answers the meter's latest attestation bundle.
func (s *Server) latestAttestation(c *gin.Context) {
	id, ok := s.meterID(c)
	if !ok {
		return
	}
	withChain, ok := chainParam(c)
	if !ok || !s.awaitMinBlock(c) {
		return
	}
	a, found, err := s.opts.Readings.Attestation(id)
	if err != nil {
		s.failErr(c, err)
		return
	}
	if !found {
		fail(c, problem(string(meter.CodeMeterNotFound), "meter "+id+" has no attestation on the ledger yet (as far as this registry has read it); POST "+api.Prefix+"/meters/"+id+"/attestations makes one"))
		return
	}
	s.answerBundle(c, http.StatusOK, id, a, withChain)
}

// chainParam reads ?chain=false, which leaves the configuration chain out
// of the bundle (for a verifier that holds it already).
func chainParam(c *gin.Context) (bool, bool) {
	q := c.Query("chain")
	if q == "" {
		return true, true
	}
	v, err := strconv.ParseBool(q)
	if err != nil {
		fail(c, problem(string(meter.CodeMalformed), "chain must be true or false"))
		return false, false
	}
	return v, true
}

func (s *Server) answerBundle(c *gin.Context, status int, meterID string, a readings.Attested, withChain bool) {
	b, err := s.bundle(c.Request.Context(), meterID, a, withChain)
	if err != nil {
		s.failErr(c, err)
		return
	}
	body, err := b.Marshal()
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.Header("Location", api.Prefix+"/meters/"+meterID+"/attestations/latest")
	c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", meterID+"-block-"+strconv.FormatUint(a.Block, 10)+".attestation.json"))
	c.Data(status, "application/json", body)
}

// bundle assembles the bundle of an attestation from the peer's blocks.
func (s *Server) bundle(ctx context.Context, meterID string, a readings.Attested, withChain bool) (*proof.Bundle, error) {
	var numbers []uint64
	if withChain {
		var err error
		if numbers, err = s.opts.Readings.ConfigBlocks(a.Block); err != nil {
			return nil, err
		}
	}
	return s.attest.assembler.Bundle(ctx, meterID, a.TxID, a.Block, numbers, withChain)
}
