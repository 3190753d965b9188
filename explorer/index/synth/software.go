package synth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// Meter types and software update statements, written as the chaincode
// writes them (pki-chaincode/contract/software.go).

// registrar is a transaction of an NMI's registrar, endorsed by it and the
// next NMI.
func registrar(nmi, function string, args ...string) chain.Tx {
	return chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: nmi, CreatorRole: wire.RoleRegistrar, Chaincode: wire.Namespace,
		Function: function, Args: args, Endorsers: []string{nmi, NMIs[(indexOf(nmi)+1)%len(NMIs)]}}
}

// RecordType makes a block where an NMI records a meter type, its versions
// approved from the block's time on.
func (c *Chain) RecordType(nmi, id string, versions ...meter.Software) *chain.Block {
	at, tx := c.now().Format(time.RFC3339), txID(c.next, 0)
	mt := meter.MeterType{ID: id, NMI: nmi, Manufacturer: "Example Metering GmbH", Model: "EM-3000", Certificate: "DE-M 26 MI003 " + id,
		RecordedTx: tx, RecordedAt: at, UpdatedTx: tx, UpdatedAt: at}
	for _, v := range versions {
		mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: v, ApprovedFrom: at, ApprovedTx: tx, ApprovedAt: at})
	}
	return c.writeType(registrar(nmi, wire.TxRecordMeterType, string(value(meter.TypeRecord{TypeID: id, Manufacturer: mt.Manufacturer,
		Model: mt.Model, Certificate: mt.Certificate}))), mt, wire.EventMeterTypeRecorded, "")
}

// ApproveSoftware makes a block where the type's NMI approves another
// version from the block's time on.
func (c *Chain) ApproveSoftware(typeID string, sw meter.Software) *chain.Block {
	mt := c.Type(typeID)
	at, tx := c.now().Format(time.RFC3339), txID(c.next, 0)
	mt.Versions = append(mt.Versions, meter.ApprovedSoftware{Software: sw, ApprovedFrom: at, ApprovedTx: tx, ApprovedAt: at})
	mt.UpdatedTx, mt.UpdatedAt = tx, at
	return c.writeType(registrar(mt.NMI, wire.TxApproveSoftware, typeID, sw.ID, sw.Checksum, ""), mt, wire.EventSoftwareApproved, sw.ID)
}

// WithdrawSoftware makes a block where the type's NMI withdraws a version
// from the block's time on.
func (c *Chain) WithdrawSoftware(typeID, softwareID, reason string) *chain.Block {
	mt := c.Type(typeID)
	mt.Versions = append([]meter.ApprovedSoftware(nil), mt.Versions...)
	at, tx := c.now().Format(time.RFC3339), txID(c.next, 0)
	for i := range mt.Versions {
		if mt.Versions[i].ID == softwareID {
			mt.Versions[i].Withdrawal = &meter.Withdrawal{Reason: reason, From: at, TxID: tx, At: at}
		}
	}
	mt.UpdatedTx, mt.UpdatedAt = tx, at
	return c.writeType(registrar(mt.NMI, wire.TxWithdrawSoftware, typeID, softwareID, reason, ""), mt, wire.EventSoftwareWithdrawn, softwareID)
}

func (c *Chain) writeType(tx chain.Tx, mt meter.MeterType, event, softwareID string) *chain.Block {
	c.types[mt.ID] = mt
	tx.Writes = []chain.Write{{Namespace: wire.Namespace, Key: wire.TypeKey(mt.ID), Value: value(mt)}}
	tx.ResponsePayload = value(mt)
	tx.Events = []chain.Event{{Name: event, Payload: value(wire.TypeEvent{NMI: mt.NMI, TypeID: mt.ID, SoftwareID: softwareID})}}
	return c.block([]chain.Tx{tx})
}

// Type returns a meter type's record as the chain last wrote it.
func (c *Chain) Type(id string) meter.MeterType { return c.types[id] }

// AssignType makes a block where a meter's NMI names its type.
func (c *Chain) AssignType(meterID, typeID string) *chain.Block {
	m := c.record[meterID]
	m.TypeID = typeID
	m.UpdatedTx, m.UpdatedAt = txID(c.next, 0), c.now().Format(time.RFC3339)
	c.record[meterID] = m
	tx := registrar(m.NMI, wire.TxAssignMeterType, meterID, typeID)
	tx.Writes = []chain.Write{
		{Namespace: wire.Namespace, Key: wire.TypeIndexKey(typeID, meterID), Value: value(meterID)},
		{Namespace: wire.Namespace, Key: wire.MeterKey(meterID), Value: value(m)}}
	tx.Events = []chain.Event{{Name: wire.EventMeterTypeAssigned, Payload: value(wire.TypeEvent{NMI: m.NMI, TypeID: typeID, MeterID: meterID})}}
	return c.block([]chain.Tx{tx})
}

// NameSoftware makes the meters' later readings name the software they
// run (meter.Measurement.SoftwareID), or not.
func (c *Chain) NameSoftware(on bool) { c.nameSoftware = on }

// Update makes a block where submitter delivers the meter's statement that
// it loaded to at the block's time, with result (meter.UpdateSuccess or
// meter.UpdateFailure), signed with its key; the chaincode accepts it:
// the meter's record counts it (and, on success, runs to from then on) and
// its software log records it.
func (c *Chain) Update(submitter, meterID string, to meter.Software, result string) *chain.Block {
	m := c.record[meterID]
	at, id := c.now().Format(time.RFC3339), txID(c.next, 0)
	from := m.CurrentSoftware()
	su := c.statement(meterID, from, to, result)
	sum := sha256.Sum256(su.Statement)
	if result == meter.UpdateSuccess {
		m.Install(to, at, id)
	}
	number := 1
	if m.Updates != nil {
		number = m.Updates.Count + 1
	}
	report := &meter.UpdateReport{MeterID: meterID, Number: number, Time: at, From: from, To: to, Result: result,
		Statement: base64.StdEncoding.EncodeToString(su.Statement), Signature: base64.StdEncoding.EncodeToString(su.Signature),
		KeyVersion: m.KeyVersion, SubmittedBy: submitter, TxID: id, RecordedAt: at}
	m.Updates = &meter.UpdateMark{Count: number, LastTime: at, LastHash: hex.EncodeToString(sum[:]), LastTx: id}
	m.UpdatedTx, m.UpdatedAt = id, at
	c.record[meterID] = m
	out := meter.UpdateOutcome{MeterID: meterID, Outcome: meter.UpdateAccepted, Report: report, TxID: id}
	tx := c.updateTx(submitter, su, out)
	tx.Writes = []chain.Write{
		{Namespace: wire.Namespace, Key: wire.MeterKey(meterID), Value: value(m)},
		{Namespace: wire.Namespace, Key: wire.SoftwareLogKey(meterID, number), Value: value(report)}}
	return c.block([]chain.Tx{tx})
}

// RefusedUpdate makes a block where submitter delivers the meter's signed
// statement that it loaded to, and the chaincode refuses it with code and
// reason: nothing is written.
func (c *Chain) RefusedUpdate(submitter, meterID string, to meter.Software, code meter.Code, reason string) *chain.Block {
	m := c.record[meterID]
	su := c.statement(meterID, m.CurrentSoftware(), to, meter.UpdateSuccess)
	out := meter.UpdateOutcome{MeterID: meterID, Outcome: meter.UpdateRefused, Code: code, Reason: reason, TxID: txID(c.next, 0)}
	return c.block([]chain.Tx{c.updateTx(submitter, su, out)})
}

// statement is the meter's signed statement, at the next block's time.
func (c *Chain) statement(meterID string, from, to meter.Software, result string) meter.SignedUpdate {
	su, err := meter.SignUpdate(c.keys[meterID], meter.UpdateStatement{MeterID: meterID, Time: c.now().Format(time.RFC3339),
		From: from, To: to, Result: result})
	if err != nil {
		panic(err)
	}
	return su
}

func (c *Chain) updateTx(submitter string, su meter.SignedUpdate, out meter.UpdateOutcome) chain.Tx {
	event := out
	event.Report = nil
	return chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: submitter, CreatorRole: wire.RoleIngest, Chaincode: wire.Namespace,
		Function: wire.TxSubmitSoftwareUpdate, Endorsers: []string{submitter, NMIs[(indexOf(submitter)+2)%len(NMIs)]},
		Args:            []string{su.MeterID, base64.StdEncoding.EncodeToString(su.Statement), base64.StdEncoding.EncodeToString(su.Signature)},
		ResponsePayload: value(out), Events: []chain.Event{{Name: wire.EventSoftwareUpdate, Payload: value(event)}},
		Reads: []chain.Read{{Namespace: wire.Namespace, Key: wire.MeterKey(su.MeterID)}}}
}
