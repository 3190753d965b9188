package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// TestBadRequests covers requests refused before the ledger: each must be
// answered with its problem and never reach the fake ledger.
func TestBadRequests(t *testing.T) {
	p256 := string(readTestdata(t, "keys/p256.good.pem"))
	reg := jsonText(registration("PTB-0001", p256))
	withField := func(field, value string) string {
		return strings.TrimSuffix(reg, "}") + `,"` + field + `":` + value + "}"
	}
	key := func(name string) string {
		return jsonText(registration("PTB-0001", string(readTestdata(t, "keys/"+name))))
	}
	payload := readTestdata(t, "measurements/p256.good.json")
	sig := readTestdata(t, "measurements/p256.sig")
	signed := func(id string, p, s []byte) map[string]any {
		m := map[string]any{"payload": p, "signature": s}
		if id != "" {
			m["meterId"] = id
		}
		return m
	}
	csvHeader := "meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum,proof\n"
	proof := registration("PTB-0001", p256).Proof
	der := base64.StdEncoding.EncodeToString(readTestdata(t, "keys/p256.der"))
	batchOf := func(n int) string {
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = signed("PTB-0001", payload, sig)
		}
		return jsonText(map[string]any{"measurements": items})
	}
	tooManyRegs := func() string {
		regs := make([]meter.Registration, api.MaxRegistrationBatch+1)
		for i := range regs {
			regs[i] = registration(fmt.Sprintf("PTB-%05d", i), p256)
		}
		return jsonText(regs)
	}
	tooManyCSV := func() string {
		var b strings.Builder
		b.WriteString(csvHeader)
		for i := range api.MaxRegistrationBatch + 1 {
			fmt.Fprintf(&b, "PTB-%05d,%s,Acme,E350,SN%d,fw,sha256:9f86d081884c7d65,%s\n", i, der, i, proof)
		}
		return b.String()
	}
	csv := func(body string) request {
		return request{method: http.MethodPost, path: "/api/v1/meters/batch", as: operator, contentType: "text/csv", body: body}
	}
	chunked := func(r request) request { r.chunked = true; return r }
	// One large body serves every size limit: only its length matters.
	huge := strings.Repeat(" ", maxRegistrationBody+1)
	const (
		malformed = string(meter.CodeMalformed)
		tooLarge  = string(meter.CodeTooLarge)
	)
	// Billing: valid signed requests, changed one way each.
	parties := newBillingParties(t)
	periodPath := "/api/v1/billing/periods/" + billedMeter + "/" + billedPeriod
	bind := func(change func(*api.BillingPeriodRequest)) api.BillingPeriodRequest {
		r := parties.bind
		change(&r)
		return r
	}
	bindStatement := func(change func(*agreement.PeriodStatement)) api.BillingPeriodRequest {
		r := parties.bind
		change(&r.Statement)
		r.CustomerSignature = parties.sign(t, parties.customer, r.Statement)
		return r
	}
	tariff := func(change func(*api.TariffAgreementRequest)) api.TariffAgreementRequest {
		r := parties.tariff
		change(&r)
		r.UtilitySignature = parties.sign(t, parties.utility, r.Statement)
		return r
	}
	keyIssued := func(change func(*api.KeyIssuedRequest)) api.KeyIssuedRequest {
		r := parties.key
		change(&r)
		return r
	}
	bill := func(change func(*api.BillRequest)) api.BillRequest {
		r := parties.bill
		change(&r)
		return r
	}
	withBillingField := func(body any) string {
		return strings.TrimSuffix(jsonText(body), "}") + `,"note":"x"}`
	}
	cases := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		// Registration bodies.
		{"malformed JSON", post("/api/v1/meters", operator, `{"meterId":`), 400, malformed},
		{"JSON syntax error", post("/api/v1/meters", operator, `{"meterId" "PTB-0001"}`), 400, malformed},
		{"wrong type", post("/api/v1/meters", operator, `{"meterId":"PTB-0001","publicKey":5}`), 400, malformed},
		{"array for an object", post("/api/v1/meters", operator, `[]`), 400, malformed},
		{"unknown field", post("/api/v1/meters", operator, withField("colour", `"red"`)), 400, malformed},
		{"field name in another case is unknown too", post("/api/v1/meters", operator, withField("Colour", `"red"`)), 400, malformed},
		{"empty body", post("/api/v1/meters", operator, ""), 400, malformed},
		{"blank body", post("/api/v1/meters", operator, " \n\t"), 400, malformed},
		{"trailing object", post("/api/v1/meters", operator, reg+`{}`), 400, malformed},
		{"trailing garbage", post("/api/v1/meters", operator, reg+` x`), 400, malformed},
		{"body over 1 MiB", post("/api/v1/meters", operator, withField("pad", `"`+strings.Repeat("a", maxBody)+`"`)), 413, tooLarge},
		{"streamed body over 1 MiB", chunked(post("/api/v1/meters", operator, withField("pad", `"`+strings.Repeat("a", maxBody)+`"`))), 413, tooLarge},
		{"no Content-Type", request{method: "POST", path: "/api/v1/meters", as: operator, body: reg}, 415, api.CodeUnsupportedMedia},
		{"text/plain", request{method: "POST", path: "/api/v1/meters", as: operator, contentType: "text/plain", body: reg}, 415, api.CodeUnsupportedMedia},
		{"unparsable Content-Type", request{method: "POST", path: "/api/v1/meters", as: operator, contentType: "application/json;;", body: reg}, 415, api.CodeUnsupportedMedia},
		{"CSV to the single registration", request{method: "POST", path: "/api/v1/meters", as: operator, contentType: "text/csv", body: reg}, 415, api.CodeUnsupportedMedia},
		{"invalid meter ID", post("/api/v1/meters", operator, registration("-PTB", p256)), 400, malformed},
		{"bad software checksum", post("/api/v1/meters", operator, strings.Replace(reg, "sha256:", "sha256-", 1)), 400, malformed},
		{"metadata field over 128 bytes", post("/api/v1/meters", operator, strings.Replace(reg, `"Acme"`, `"`+strings.Repeat("A", 129)+`"`, 1)), 413, tooLarge},
		{"key not PEM", post("/api/v1/meters", operator, registration("PTB-0001", "not a key")), 422, string(meter.CodeInvalidKey)},
		{"truncated PEM", post("/api/v1/meters", operator, key("truncated-pem.bad.pem")), 422, string(meter.CodeInvalidKey)},
		{"certificate for a key", post("/api/v1/meters", operator, key("certificate.bad.pem")), 422, string(meter.CodeInvalidKey)},
		{"point off the curve", post("/api/v1/meters", operator, key("p256-offcurve.bad.pem")), 422, string(meter.CodeInvalidKey)},
		{"RSA key", post("/api/v1/meters", operator, key("rsa2048.bad.pem")), 422, string(meter.CodeUnsupportedKey)},
		{"Ed25519 key", post("/api/v1/meters", operator, key("ed25519.bad.pem")), 422, string(meter.CodeUnsupportedKey)},
		{"P-224 key", post("/api/v1/meters", operator, key("p224.bad.pem")), 422, string(meter.CodeUnsupportedKey)},
		{"Idempotency-Key too long", post("/api/v1/meters", operator, reg).with(HeaderIdempotencyKey, strings.Repeat("k", 256)), 400, malformed},
		{"Idempotency-Key not ASCII", post("/api/v1/meters", operator, reg).with(HeaderIdempotencyKey, "schlüssel"), 400, malformed},

		// Batch registration.
		{"empty batch", post("/api/v1/meters/batch", operator, `[]`), 400, malformed},
		{"null batch", post("/api/v1/meters/batch", operator, `null`), 400, malformed},
		{"object for a batch", post("/api/v1/meters/batch", operator, reg), 400, malformed},
		{"batch entry of the wrong type", post("/api/v1/meters/batch", operator, `[{"meterId":7}]`), 400, malformed},
		{"batch of 10,001 meters", post("/api/v1/meters/batch", operator, tooManyRegs()), 413, tooLarge},
		{"batch body over 32 MiB", post("/api/v1/meters/batch", operator, huge), 413, tooLarge},
		{"batch as XML", request{method: "POST", path: "/api/v1/meters/batch", as: operator, contentType: "application/xml", body: "<meters/>"}, 415, api.CodeUnsupportedMedia},
		{"batch without Content-Type", request{method: "POST", path: "/api/v1/meters/batch", as: operator, body: "[]"}, 415, api.CodeUnsupportedMedia},
		{"CSV without rows", csv(csvHeader), 400, malformed},
		{"empty CSV", csv(""), 400, malformed},
		{"CSV unknown column", csv("meterId,colour\n"), 400, malformed},
		{"CSV missing column", csv("meterId,publicKey,manufacturer,model,serialNumber,softwareId,proof\n"), 400, malformed},
		{"CSV without the proof column", csv("meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum\n" +
			"PTB-0001," + der + ",Acme,E350,SN1,fw,sha256:9f86d081884c7d65\n"), 400, malformed},
		{"CSV column twice", csv("meterId,publicKey,manufacturer,model,serialNumber,softwareId,softwareChecksum,proof,proof\n"), 400, malformed},
		{"CSV key neither PEM nor base64", csv(csvHeader + "PTB-0001,***,Acme,E350,SN1,fw,sha256:9f86d081884c7d65," + proof + "\n"), 400, malformed},
		{"CSV base64 of no key", csv(csvHeader + "PTB-0001,AAAA,Acme,E350,SN1,fw,sha256:9f86d081884c7d65," + proof + "\n"), 400, malformed},
		{"CSV proof not base64", csv(csvHeader + "PTB-0001," + der + ",Acme,E350,SN1,fw,sha256:9f86d081884c7d65,%%%\n"), 400, malformed},
		{"CSV row of the wrong width", csv(csvHeader + "PTB-0001," + der + "\n"), 400, malformed},
		{"CSV unterminated quote", csv(csvHeader + `PTB-0001,"` + der + "\n"), 400, malformed},
		{"CSV of 10,001 meters", csv(tooManyCSV()), 413, tooLarge},
		{"CSV body over 32 MiB", csv(huge), 413, tooLarge},
		{"streamed CSV over 32 MiB", chunked(csv(huge)), 413, tooLarge},

		// Reads.
		{"meter ID starting with a dash", get("/api/v1/meters/-PTB", auditor), 400, malformed},
		{"meter ID of 65 characters", get("/api/v1/meters/"+strings.Repeat("a", 65), auditor), 400, malformed},
		{"meter ID with a space", get("/api/v1/meters/PTB%200001", auditor), 400, malformed},
		{"meter ID with a star", get("/api/v1/meters/PTB*", auditor), 400, malformed},
		{"history of an invalid ID", get("/api/v1/meters/~x/history", auditor), 400, malformed},
		{"keys of an invalid ID", get("/api/v1/meters/~x/keys", auditor), 400, malformed},
		{"measurements of an invalid ID", get("/api/v1/meters/~x/measurements", auditor), 400, malformed},
		{"rejections of an invalid ID", get("/api/v1/meters/~x/rejections", auditor), 400, malformed},
		{"pre-enrolment of an invalid ID", get("/api/v1/pre-enrolments/~x", auditor), 400, malformed},
		{"limit 0", get("/api/v1/meters?limit=0", auditor), 400, malformed},
		{"limit 1001", get("/api/v1/meters?limit=1001", auditor), 400, malformed},
		{"limit not a number", get("/api/v1/meters?limit=ten", auditor), 400, malformed},
		{"limit of measurements", get("/api/v1/meters/PTB-0001/measurements?limit=-1", auditor), 400, malformed},
		{"limit of rejections", get("/api/v1/meters/PTB-0001/rejections?limit=5000", auditor), 400, malformed},
		{"cursor not base64url", get("/api/v1/meters?cursor=a%2Bb", auditor), 400, malformed},
		{"cursor of impossible length", get("/api/v1/meters?cursor=a", auditor), 400, malformed},
		{"cursor of measurements", get("/api/v1/meters/PTB-0001/measurements?cursor=!!", auditor), 400, malformed},
		{"cursor of rejections", get("/api/v1/meters/PTB-0001/rejections?cursor=!!", auditor), 400, malformed},
		{"minBlock negative", get("/api/v1/meters/PTB-0001?minBlock=-1", auditor), 400, malformed},
		{"minBlock not a number", get("/api/v1/meters/PTB-0001?minBlock=latest", auditor), 400, malformed},
		{"minBlock too large", get("/api/v1/meters?minBlock=18446744073709551616", auditor), 400, malformed},
		{"minBlock of history", get("/api/v1/meters/PTB-0001/history?minBlock=x", auditor), 400, malformed},
		{"minBlock of keys", get("/api/v1/meters/PTB-0001/keys?minBlock=x", auditor), 400, malformed},
		{"minBlock of measurements", get("/api/v1/meters/PTB-0001/measurements?minBlock=x", auditor), 400, malformed},
		{"minBlock of rejections", get("/api/v1/meters/PTB-0001/rejections?minBlock=x", auditor), 400, malformed},
		{"unknown status", get("/api/v1/meters?status=suspended", auditor), 400, malformed},

		// Rotation, revocation, reinstatement, pre-enrolment.
		{"rotate an invalid ID", post("/api/v1/meters/-x/rotate", operator, map[string]string{"publicKey": p256, "proof": "AAAA"}), 400, malformed},
		{"rotate to a bad key", post("/api/v1/meters/PTB-0001/rotate", operator, map[string]string{"publicKey": "nope", "proof": "AAAA"}), 422, string(meter.CodeInvalidKey)},
		{"rotate to an RSA key", post("/api/v1/meters/PTB-0001/rotate", operator, map[string]string{"publicKey": string(readTestdata(t, "keys/rsa2048.bad.pem")), "proof": "AAAA"}), 422, string(meter.CodeUnsupportedKey)},
		{"rotate with a proof not base64", post("/api/v1/meters/PTB-0001/rotate", operator, map[string]string{"publicKey": p256, "proof": "%%%"}), 400, malformed},
		{"rotate without proof", post("/api/v1/meters/PTB-0001/rotate", operator, map[string]string{"publicKey": p256}), 400, malformed},
		{"rotate with an unknown field", post("/api/v1/meters/PTB-0001/rotate", operator, map[string]string{"publicKey": p256, "proof": "AAAA", "keyVersion": "2"}), 400, malformed},
		{"rotate as text", request{method: "POST", path: "/api/v1/meters/PTB-0001/rotate", as: operator, contentType: "text/plain", body: "{}"}, 415, api.CodeUnsupportedMedia},
		{"revoke for no reason", post("/api/v1/meters/PTB-0001/revoke", operator, map[string]string{}), 400, malformed},
		{"revoke for an unknown reason", post("/api/v1/meters/PTB-0001/revoke", operator, map[string]string{"reason": "lost"}), 400, malformed},
		{"revoke with a bad invalidity date", post("/api/v1/meters/PTB-0001/revoke", operator, map[string]string{"reason": "keyCompromise", "invalidityDate": "yesterday"}), 400, malformed},
		{"revoke a meter ID with a slash", post("/api/v1/meters/PTB%2F1/revoke", operator, map[string]string{"reason": "keyCompromise"}), 404, api.CodeNotFound},
		{"revoke body over 1 MiB", post("/api/v1/meters/PTB-0001/revoke", operator, huge[:maxBody+1]), 413, tooLarge},
		{"reinstate an invalid ID", request{method: "POST", path: "/api/v1/meters/-x/reinstate", as: operator}, 400, malformed},
		{"pre-enrol an invalid ID", post("/api/v1/pre-enrolments", operator, api.PreEnrolmentRequest{MeterID: "", IdentityHash: meter.IdentityHash("x")}), 400, malformed},
		{"pre-enrol an uppercase hash", post("/api/v1/pre-enrolments", operator, api.PreEnrolmentRequest{MeterID: "PTB-0001", IdentityHash: strings.ToUpper(meter.IdentityHash("x"))}), 400, malformed},
		{"pre-enrol a short hash", post("/api/v1/pre-enrolments", operator, api.PreEnrolmentRequest{MeterID: "PTB-0001", IdentityHash: "abc"}), 400, malformed},

		// Measurements.
		{"payload not base64", post("/api/v1/meters/PTB-0001/measurements", ingest, `{"payload":"%%%","signature":"AAAA"}`), 400, malformed},
		{"signature not base64", post("/api/v1/meters/PTB-0001/measurements", ingest, `{"payload":"AAAA","signature":"AA A"}`), 400, malformed},
		{"payload a number", post("/api/v1/meters/PTB-0001/measurements", ingest, `{"payload":5,"signature":"AAAA"}`), 400, malformed},
		{"seq beside the payload", post("/api/v1/meters/PTB-0001/measurements", ingest, `{"payload":"AAAA","signature":"AAAA","seq":1}`), 400, malformed},
		{"no signature", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", payload, nil)), 400, malformed},
		{"no payload", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", nil, sig)), 400, malformed},
		{"body names another meter", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("PTB-0002", payload, sig)), 422, string(meter.CodeMeterMismatch)},
		{"payload not a measurement", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", []byte("hello"), sig)), 400, malformed},
		{"payload with seq as a string", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", readTestdata(t, "measurements/seq-string.bad.json"), sig)), 400, malformed},
		{"payload with trailing data", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", readTestdata(t, "measurements/trailing-data.bad.json"), sig)), 400, malformed},
		{"payload over 16 KiB", post("/api/v1/meters/PTB-0001/measurements", ingest, signed("", readTestdata(t, "measurements/oversized.bad.json"), sig)), 413, tooLarge},
		{"measurement body over 2 MiB", post("/api/v1/meters/PTB-0001/measurements", ingest, huge[:2*maxBody+1]), 413, tooLarge},
		{"measurement for an invalid ID", post("/api/v1/meters/-1/measurements", ingest, signed("", payload, sig)), 400, malformed},
		{"measurement as form", request{method: "POST", path: "/api/v1/meters/PTB-0001/measurements", as: ingest, contentType: "application/x-www-form-urlencoded", body: "payload=x"}, 415, api.CodeUnsupportedMedia},
		{"empty concentrator batch", post("/api/v1/measurements/batch", ingest, `{"measurements":[]}`), 400, malformed},
		{"concentrator batch without items", post("/api/v1/measurements/batch", ingest, `{}`), 400, malformed},
		{"concentrator item without meter", post("/api/v1/measurements/batch", ingest, map[string]any{"measurements": []any{signed("", payload, sig)}}), 400, malformed},
		{"concentrator item without signature", post("/api/v1/measurements/batch", ingest, map[string]any{"measurements": []any{signed("PTB-0001", payload, nil)}}), 400, malformed},
		{"concentrator batch of 1,001", post("/api/v1/measurements/batch", ingest, batchOf(api.MaxMeasurementBatch+1)), 413, tooLarge},
		{"concentrator batch over 24 MiB", post("/api/v1/measurements/batch", ingest, huge[:maxMeasurementBody+1]), 413, tooLarge},
		{"concentrator batch with bad base64", post("/api/v1/measurements/batch", ingest, `{"measurements":[{"meterId":"PTB-0001","payload":"@","signature":"AAAA"}]}`), 400, malformed},
		{"verify an invalid meter ID", post("/api/v1/measurements/verify", auditor, signed("-x", payload, sig)), 400, malformed},
		{"verify without a meter ID", post("/api/v1/measurements/verify", auditor, signed("", payload, sig)), 400, malformed},
		{"verify without a signature", post("/api/v1/measurements/verify", auditor, `{"meterId":"PTB-0001","payload":"e30=","signature":""}`), 400, malformed},
		{"verify bad base64", post("/api/v1/measurements/verify", auditor, `{"meterId":"PTB-0001","payload":"!","signature":"AAAA"}`), 400, malformed},
		{"verify as text", request{method: "POST", path: "/api/v1/measurements/verify", as: auditor, contentType: "text/plain", body: "x"}, 415, api.CodeUnsupportedMedia},
		{"verify body over 2 MiB", post("/api/v1/measurements/verify", auditor, huge[:2*maxBody+1]), 413, tooLarge},

		// Billing.
		{"bind not JSON", post("/api/v1/billing/periods", customer, `{"statement":`), 400, malformed},
		{"bind with an unknown field", post("/api/v1/billing/periods", customer, withBillingField(parties.bind)), 400, malformed},
		{"bind with an unknown statement field", post("/api/v1/billing/periods", customer, strings.Replace(jsonText(parties.bind), `"slots":96`, `"slots":96,"tariff":1`, 1)), 400, malformed},
		{"bind with slots as a string", post("/api/v1/billing/periods", customer, strings.Replace(jsonText(parties.bind), `"slots":96`, `"slots":"96"`, 1)), 400, malformed},
		{"bind without slots", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.Slots = 0 })), 400, malformed},
		{"bind of the wrong statement type", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.Type = agreement.TypeBill })), 400, malformed},
		{"bind an invalid period", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.Period = "2026/11/20" })), 400, malformed},
		{"bind an invalid meter", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.MeterID = "" })), 400, malformed},
		{"bind a short interval", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.Interval = "30s" })), 400, malformed},
		{"bind an unknown group", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.Group = 1024 })), 400, malformed},
		{"bind a key hash not hex", post("/api/v1/billing/periods", customer, bindStatement(func(s *agreement.PeriodStatement) { s.PublicKeySHA256 = "key" })), 400, malformed},
		{"bind with a key not PEM", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.CustomerKey = "key" })), 422, string(meter.CodeInvalidKey)},
		{"bind with an RSA key", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.CustomerKey = string(readTestdata(t, "keys/rsa2048.bad.pem")) })), 422, string(meter.CodeUnsupportedKey)},
		{"bind signed by another key", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.CustomerSignature = parties.sign(t, parties.other, r.Statement) })), 422, string(meter.CodeBadSignature)},
		{"bind changed after signing", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.Statement.MaxReading++ })), 422, string(meter.CodeBadSignature)},
		{"bind signature not base64", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.CustomerSignature = "%%%" })), 400, malformed},
		{"bind without signature", post("/api/v1/billing/periods", customer, bind(func(r *api.BillingPeriodRequest) { r.CustomerSignature = "" })), 400, malformed},
		{"bind body over 1 MiB", post("/api/v1/billing/periods", customer, huge[:maxBody+1]), 413, tooLarge},
		{"bind as text", request{method: "POST", path: "/api/v1/billing/periods", as: customer, contentType: "text/plain", body: jsonText(parties.bind)}, 415, api.CodeUnsupportedMedia},
		{"tariff of an invalid meter ID", post("/api/v1/billing/periods/-x/"+billedPeriod+"/tariff", utility, parties.tariff), 400, malformed},
		{"tariff of an invalid period", post("/api/v1/billing/periods/"+billedMeter+"/-x/tariff", utility, parties.tariff), 400, malformed},
		{"tariff of a period of 33 characters", post("/api/v1/billing/periods/"+billedMeter+"/"+strings.Repeat("p", 33)+"/tariff", utility, parties.tariff), 400, malformed},
		{"tariff naming another meter", post(periodPath+"/tariff", utility, tariff(func(r *api.TariffAgreementRequest) { r.Statement.MeterID = "PTB-0002" })), 422, string(meter.CodeMeterMismatch)},
		{"tariff naming another period", post(periodPath+"/tariff", utility, tariff(func(r *api.TariffAgreementRequest) { r.Statement.Period = "2026-11-21" })), 422, string(agreement.CodePeriodMismatch)},
		{"tariff of the wrong statement type", post(periodPath+"/tariff", utility, tariff(func(r *api.TariffAgreementRequest) { r.Statement.Type = agreement.TypePeriod })), 400, malformed},
		{"tariff hash in uppercase", post(periodPath+"/tariff", utility, tariff(func(r *api.TariffAgreementRequest) {
			r.Statement.TariffSHA256 = strings.ToUpper(r.Statement.TariffSHA256)
		})), 400, malformed},
		{"tariff with a utility key not PEM", post(periodPath+"/tariff", utility, tariff(func(r *api.TariffAgreementRequest) { r.UtilityKey = "" })), 422, string(meter.CodeInvalidKey)},
		{"tariff signed by another utility key", post(periodPath+"/tariff", utility, func() api.TariffAgreementRequest {
			r := parties.tariff
			r.UtilitySignature = parties.sign(t, parties.other, r.Statement)
			return r
		}()), 422, string(meter.CodeBadSignature)},
		{"tariff with a customer signature not base64", post(periodPath+"/tariff", customer, tariff(func(r *api.TariffAgreementRequest) { r.CustomerSignature = "a b" })), 400, malformed},
		{"tariff with an unknown field", post(periodPath+"/tariff", customer, withBillingField(parties.tariff)), 400, malformed},
		{"key naming another meter", post(periodPath+"/key", customer, keyIssued(func(r *api.KeyIssuedRequest) { r.Statement.MeterID = "PTB-0002" })), 422, string(meter.CodeMeterMismatch)},
		{"key with a tariff hash not hex", post(periodPath+"/key", customer, keyIssued(func(r *api.KeyIssuedRequest) { r.Statement.TariffSHA256 = "" })), 400, malformed},
		{"key without signature", post(periodPath+"/key", customer, keyIssued(func(r *api.KeyIssuedRequest) { r.CustomerSignature = "" })), 400, malformed},
		{"key with the functional key itself", post(periodPath+"/key", customer, withBillingField(parties.key)), 400, malformed},
		{"bill naming another period", post(periodPath+"/bill", utility, bill(func(r *api.BillRequest) { r.Statement.Period = "2026-11-21" })), 422, string(agreement.CodePeriodMismatch)},
		{"bill of no slots", post(periodPath+"/bill", utility, bill(func(r *api.BillRequest) { r.Statement.Slots = 0 })), 400, malformed},
		{"bill of a negative amount", post(periodPath+"/bill", utility, strings.Replace(jsonText(parties.bill), `"amount":1234567`, `"amount":-1`, 1)), 400, malformed},
		{"bill signature not base64", post(periodPath+"/bill", utility, bill(func(r *api.BillRequest) { r.UtilitySignature = "*" })), 400, malformed},
		{"bill body over 1 MiB", post(periodPath+"/bill", utility, huge[:maxBody+1]), 413, tooLarge},
		{"billing period of an invalid meter ID", get("/api/v1/billing/periods/~x/"+billedPeriod, auditor), 400, malformed},
		{"billing period of an invalid period", get("/api/v1/billing/periods/"+billedMeter+"/p%20q", auditor), 400, malformed},
		{"billing period with minBlock not a number", get(periodPath+"?minBlock=x", customer), 400, malformed},

		// Routing.
		{"unknown API route", get("/api/v1/certificates", auditor), 404, api.CodeNotFound},
		{"unknown route without a token", get("/nothing", ""), 404, api.CodeNotFound},
		{"DELETE a meter", request{method: http.MethodDelete, path: "/api/v1/meters/PTB-0001", as: operator}, 405, api.CodeMethodNotAllowed},
		{"PUT meters", request{method: http.MethodPut, path: "/api/v1/meters", as: operator}, 405, api.CodeMethodNotAllowed},
		{"POST healthz", request{method: http.MethodPost, path: "/healthz"}, 405, api.CodeMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(c.req)
			problemOf(t, rec, c.status, c.code)
			if calls := f.ledger.recorded(); len(calls) != 0 {
				t.Errorf("the ledger was called: %+v", calls[0])
			}
		})
	}
}

func TestMethodNotAllowedListsMethods(t *testing.T) {
	f := newFixture(t)
	rec := f.do(request{method: http.MethodDelete, path: "/api/v1/meters", as: operator})
	problemOf(t, rec, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q, want GET and POST", allow)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	unknown := "nmipki_" + strings.Repeat("A", 43)
	cases := []struct {
		name, authorization string
		// invalid is whether the header named a token that is not valid.
		invalid bool
	}{
		{"no Authorization", "", false},
		{"Basic", "Basic dXNlcjpwYXNz", false},
		{"Bearer without a token", "Bearer ", false},
		{"unknown token", "Bearer " + unknown, true},
		{"token without the prefix", "Bearer " + strings.TrimPrefix(f.tokens[auditor], "nmipki_"), true},
		{"token with a character changed", "Bearer " + f.tokens[auditor][:len(f.tokens[auditor])-1] + "#", true},
	}
	routes := []request{
		get("/api/v1/meters", ""),
		get("/api/v1/consortium", ""),
		post("/api/v1/meters", "", registration("PTB-0001", newKeyPEM(t))),
		post("/api/v1/measurements/verify", "", `{}`),
	}
	for _, c := range cases {
		for _, r := range routes {
			t.Run(c.name+" "+r.method+" "+r.path, func(t *testing.T) {
				r.authorization = c.authorization
				rec := f.do(r)
				problemOf(t, rec, http.StatusUnauthorized, api.CodeUnauthenticated)
				want := `Bearer realm="inter-nmi-registry"`
				if c.invalid {
					want += `, error="invalid_token"`
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			})
		}
	}
	if calls := f.ledger.recorded(); len(calls) != 0 {
		t.Errorf("the ledger was called: %+v", calls)
	}
	// The scheme is case-insensitive (RFC 7235).
	lower := get("/api/v1/meters", "")
	lower.authorization = "bearer " + f.tokens[auditor]
	decode[api.MeterList](t, f.do(lower), http.StatusOK)
	// Each token is its own credential, and the public routes need none.
	for _, id := range []string{operator, ingest, auditor, customer, utility} {
		decode[api.MeterList](t, f.do(get("/api/v1/meters", id)), http.StatusOK)
	}
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/openapi.yaml"} {
		if rec := f.do(get(path, "")); rec.Code != http.StatusOK {
			t.Errorf("%s without a token: %d", path, rec.Code)
		}
	}
}

// TestRoles refuses each write route to the roles that may not call it.
func TestRoles(t *testing.T) {
	key := newKeyPEM(t)
	parties := newBillingParties(t)
	periodPath := "/api/v1/billing/periods/" + billedMeter + "/" + billedPeriod
	measurement := map[string]any{"meterId": "PTB-0001", "payload": readTestdata(t, "measurements/p256.good.json"),
		"signature": readTestdata(t, "measurements/p256.sig")}
	update := signedUpdate(t, "PTB-0001")
	routes := []struct {
		req     request
		refused []string
	}{
		{post("/api/v1/meters", "", registration("PTB-0001", key)), []string{auditor, ingest, customer, utility}},
		{post("/api/v1/meters/batch", "", []meter.Registration{registration("PTB-0001", key)}), []string{auditor, ingest, customer, utility}},
		{post("/api/v1/meters/PTB-0001/rotate", "", api.RotateRequest{PublicKey: key, Proof: "AAAA"}), []string{auditor, ingest}},
		{post("/api/v1/meters/PTB-0001/revoke", "", api.RevokeRequest{Reason: meter.ReasonKeyCompromise}), []string{auditor, ingest}},
		{request{method: "POST", path: "/api/v1/meters/PTB-0001/reinstate"}, []string{auditor, ingest}},
		{post("/api/v1/pre-enrolments", "", api.PreEnrolmentRequest{MeterID: "PTB-0001", IdentityHash: meter.IdentityHash("x")}), []string{auditor, ingest, customer, utility}},
		{request{method: "DELETE", path: "/api/v1/pre-enrolments/PTB-0001"}, []string{auditor, ingest, customer, utility}},
		{post("/api/v1/consortium/votes", "", api.VoteRequest{Action: api.ActionRevoke, MeterID: "NMIM-0001", Reason: "cessationOfOperation"}), []string{auditor, ingest, customer, utility}},
		{post("/api/v1/meters/PTB-0001/measurements", "", measurement), []string{auditor, operator, customer, utility}},
		{post("/api/v1/measurements/batch", "", map[string]any{"measurements": []any{measurement}}), []string{auditor, operator, customer, utility}},
		{post("/api/v1/billing/periods", "", parties.bind), []string{auditor, operator, ingest, utility}},
		{post(periodPath+"/tariff", "", parties.tariff), []string{auditor, operator, ingest}},
		{post(periodPath+"/key", "", parties.key), []string{auditor, operator, ingest, utility}},
		{post(periodPath+"/bill", "", parties.bill), []string{auditor, operator, ingest, customer}},
		{post("/api/v1/types", "", typeRecord()), []string{auditor, ingest, customer, utility}},
		{post("/api/v1/types/PTB-E350/versions", "", api.ApproveRequest{Software: fw13}), []string{auditor, ingest, customer, utility}},
		{post("/api/v1/types/PTB-E350/withdraw", "", api.WithdrawRequest{SoftwareID: fw12.ID, Reason: "superseded"}), []string{auditor, ingest, customer, utility}},
		{request{method: "PUT", path: "/api/v1/meters/PTB-0001/type", contentType: "application/json", body: `{"typeId":"PTB-E350"}`},
			[]string{auditor, ingest, customer, utility}},
		{post("/api/v1/meters/PTB-0001/software-updates", "", update), []string{auditor, operator, customer, utility}},
	}
	for _, r := range routes {
		for _, as := range r.refused {
			t.Run(r.req.path+" as "+as, func(t *testing.T) {
				f := newFixture(t)
				req := r.req
				req.as = as
				p := problemOf(t, f.do(req), http.StatusForbidden, api.CodeRoleForbidden)
				if !strings.Contains(p.Detail, string(roleOf[as])) {
					t.Errorf("detail %q does not name the role %s", p.Detail, roleOf[as])
				}
				if calls := f.ledger.recorded(); len(calls) != 0 {
					t.Errorf("the ledger was called: %+v", calls)
				}
			})
		}
	}
}
