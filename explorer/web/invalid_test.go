package web

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/network/pkg/chain"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/pki-chaincode/wire"
)

// asn1Reason is what the chaincode answers a signature that is not DER:
// a library's error, which the pages fold away under the plain sentence.
const asn1Reason = "signature is not DER-encoded ECDSA: asn1: structure error: tags don't match (16 vs {class:0 tag:0 length:113 isCompound:true}) {optional:false explicit:false application:false private:false defaultValue:<nil> tag:<nil> stringType:0 timeType:0 set:false omitEmpty:false} ecdsaSignature @2"

// badSignature is a block with one reading of the meter the chaincode
// refused BAD_SIGNATURE: a signature that is not DER, as a broken
// concentrator sends it.
func badSignature(t *testing.T, c *synth.Chain, id string, seq uint64) *chain.Block {
	t.Helper()
	m := meter.Measurement{MeterID: id, Seq: seq, Time: start.Add(time.Hour).Format(time.RFC3339), Value: "1.000", Unit: "kWh"}
	payload, err := m.Payload()
	if err != nil {
		t.Fatal(err)
	}
	result, _ := json.Marshal(meter.ItemResult{MeterID: id, Seq: seq, Outcome: meter.OutcomeRejected, Code: meter.CodeBadSignature, Reason: asn1Reason})
	return c.Tx(chain.Tx{Type: "ENDORSER_TRANSACTION", CreatorMSP: "PTBMSP", CreatorRole: wire.RoleIngest, Chaincode: wire.Namespace,
		Function: wire.TxSubmitMeasurement, Endorsers: []string{"PTBMSP", "CMIMSP"},
		Args:            []string{id, base64.StdEncoding.EncodeToString(payload), base64.StdEncoding.EncodeToString([]byte("not DER"))},
		ResponsePayload: result})
}

// A batch the peers invalidated (MVCC_READ_CONFLICT) and the registry's
// second endorsement of it are an operational event and the transaction
// that carried its readings, not refusals: the invalid transactions'
// page links the one to the other, the transaction pages say it both
// ways, the dashboard counts it by cause apart from the refused readings,
// and a refusal reads as a plain sentence with the chaincode's reason
// folded away.
func TestInvalidTransactionsApart(t *testing.T) {
	c, blocks := fixtureChain(t)
	conflicted, carried := c.ConflictedMeasurements("NMIMMSP", c.Meters()[2:5], 12, 0, "MVCC_READ_CONFLICT") // meters 3 to 5, in service
	blocks = append(blocks, conflicted, carried, badSignature(t, c, synth.MeterID(5), 99))                   // 6, 7, 8
	f := newFixtureWith(t, nil, blocks, nil)
	f.clock.add(16 * time.Second) // block 8 is at start+16s
	cookie := f.session(t)
	invalidTx, carrierTx, refusedTx := conflicted.Txs[0].ID, carried.Txs[0].ID, blocks[8].Txs[0].ID

	for _, tc := range []struct {
		path          string
		want, notWant []string
	}{
		{path: "/invalid", want: []string{
			`<tr data-code="MVCC_READ_CONFLICT" data-carried-by="` + carrierTx + `">`,
			`<span class="badge warn">MVCC_READ_CONFLICT</span> <span class="plain">` + template.HTMLEscapeString(chain.PlainCode("MVCC_READ_CONFLICT")) + `</span>`,
			`href="/tx/` + invalidTx + `"`, `<td>12 measurements</td>`,
			`<a class="carried-by" href="/tx/` + carrierTx + `" title="` + carrierTx + `">block 7, <code>`,
			`<tr data-code="ENDORSEMENT_POLICY_FAILURE">`, `<strong>2</strong> invalid transactions, <strong>1</strong> of them carried again`,
			`<tr data-code="MVCC_READ_CONFLICT"><td><a href="/invalid?code=MVCC_READ_CONFLICT">MVCC_READ_CONFLICT</a></td>`,
		}},
		{path: "/invalid?code=MVCC_READ_CONFLICT", want: []string{`data-carried-by="` + carrierTx + `"`}, notWant: []string{`<code>RevokeMeter</code>`}},
		{path: "/tx/" + invalidTx, want: []string{
			`id="code" class="badge warn">MVCC_READ_CONFLICT`, template.HTMLEscapeString(chain.PlainCode("MVCC_READ_CONFLICT")),
			`<p id="carried-by">Its request was carried again by transaction <a href="/tx/` + carrierTx + `"><code class="wrap">` + carrierTx + `</code></a> in block <a href="/blocks/7">7</a>, with its 12 measurements.`,
		}},
		{path: "/tx/" + carrierTx, want: []string{
			`badge ok">VALID`, `<div id="carries">This transaction carried the request of an earlier transaction the peers marked invalid:`,
			`<a href="/tx/` + invalidTx + `">`, `in block <a href="/blocks/6">6</a>, <span class="badge warn">MVCC_READ_CONFLICT</span>`,
		}, notWant: []string{`id="carried-by"`, `id="tx-refusals"`}},
		// The refusal: a plain sentence, the raw reason folded away on the
		// list and in full on its transaction's page.
		{path: "/refusals?code=BAD_SIGNATURE", want: []string{
			`<tr data-meter="SYN-0000005" data-kind="measurement" data-code="BAD_SIGNATURE">`,
			`<span class="badge bad">BAD_SIGNATURE</span> <span class="plain">` + template.HTMLEscapeString(meter.Plain(meter.CodeBadSignature)) + `</span>`,
			`<details class="detail"><summary>Technical detail</summary><code>` + template.HTMLEscapeString(asn1Reason) + `</code></details>`,
		}, notWant: []string{`MVCC_READ_CONFLICT`}},
		{path: "/tx/" + refusedTx, want: []string{
			`<h2 id="tx-refusals">Refused here <span class="sub">(1, with the chaincode's reasons in full)</span></h2>`,
			`<tr data-meter="SYN-0000005" data-code="BAD_SIGNATURE">`, `<code class="reason">` + template.HTMLEscapeString(asn1Reason) + `</code>`,
		}},
		{path: "/meters/SYN-0000005", want: []string{
			`✗ refused</span> <span class="badge bad">BAD_SIGNATURE</span> <span class="plain">` + template.HTMLEscapeString(meter.Plain(meter.CodeBadSignature)),
			`<summary>Technical detail</summary><code>` + template.HTMLEscapeString(asn1Reason) + `</code>`,
		}},
		{path: "/", want: []string{
			`<a id="refused-measurements" href="/refusals?kind=measurement">3</a>`, `<a id="invalid-transactions" href="/invalid">2 invalid</a>`,
			`<span id="invalid-carried">1</span>`,
			`<li data-code="ENDORSEMENT_POLICY_FAILURE"><a href="/invalid?code=ENDORSEMENT_POLICY_FAILURE">ENDORSEMENT_POLICY_FAILURE</a> 1</li>`,
			`<li data-code="MVCC_READ_CONFLICT"><a href="/invalid?code=MVCC_READ_CONFLICT">MVCC_READ_CONFLICT</a> 1</li>`,
			// 7 + 12 accepted and 3 refused, in the minute of start; 9
			// transactions; over 300 s.
			`<span id="measurement-rate">0.06</span>`, `<span id="refused-rate">0.01</span>`, `<span id="tps">0.03</span>`,
			`<span id="minutes-accepted">19</span> accepted, <span id="minutes-refused">3</span> refused`,
		}, notWant: []string{`id="findings-count"`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, body := f.get(t, tc.path, cookie)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %s", w)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}
