package web

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/explorer/index"
	"github.com/inter-nmi/pki/explorer/index/synth"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

func TestExportCSV(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.session(t)
	for _, tc := range []struct {
		query      string
		block      string
		meters     int
		status     meter.Status // of SYN-0000002
		reason     string
		statusSet  string // block that set SYN-0000002's record
		attachment string
	}{
		{"?block=2", "2", 5, meter.StatusActive, "", "0", `attachment; filename=meter-registry-metrology-block-2.csv`},
		{"", "5", 6, meter.StatusRevoked, "keyCompromise", "3", `attachment; filename=meter-registry-metrology-block-5.csv`},
	} {
		res, body := f.get(t, "/export/registry.csv"+tc.query, cookie)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%s: %d %s: %s", tc.query, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		if got := res.Header.Get("Content-Disposition"); got != tc.attachment {
			t.Errorf("%s: Content-Disposition %q", tc.query, got)
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows[0], csvHeader) || strings.Join(rows[0], ",") !=
			"meterId,nmi,status,keyVersion,curve,fingerprint,manufacturer,model,serialNumber,softwareId,softwareChecksum,revocationReason,revokedAt,invalidityDate,txId,block,"+
				"typeId,currentSoftwareId,currentSoftwareChecksum,currentSoftwareSince,softwareStatus" {
			t.Fatalf("header %v", rows[0])
		}
		if len(rows)-1 != tc.meters {
			t.Fatalf("%s: %d meters, want %d", tc.query, len(rows)-1, tc.meters)
		}
		col := func(row []string, name string) string { return row[slices.Index(csvHeader, name)] }
		m2 := rows[2]
		if col(m2, "meterId") != synth.MeterID(2) || col(m2, "status") != string(tc.status) || col(m2, "revocationReason") != tc.reason ||
			col(m2, "block") != tc.statusSet {
			t.Errorf("%s: SYN-0000002 %v", tc.query, m2)
		}
		wantTx := f.blocks[0].Txs[0].ID
		if tc.statusSet == "3" {
			wantTx = f.blocks[3].Txs[0].ID
		}
		if col(m2, "txId") != wantTx {
			t.Errorf("%s: SYN-0000002 set by %s, want %s", tc.query, col(m2, "txId"), wantTx)
		}
		if col(rows[1], "manufacturer") != "Example Metering GmbH" || col(rows[1], "nmi") != "PTBMSP" || col(rows[1], "keyVersion") != "1" {
			t.Errorf("SYN-0000001 %v", rows[1])
		}
		if tc.meters == 6 {
			if m6 := rows[6]; col(m6, "model") != "'"+hostileModel || col(m6, "manufacturer") != hostileManufacturer {
				t.Errorf("hostile meter %v: a formula must not reach a spreadsheet as one", m6)
			}
		}
	}
}

func TestExportJSON(t *testing.T) {
	f := newFixture(t, nil)
	res, body := f.get(t, "/export/registry.json?block=2", f.session(t))
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" ||
		res.Header.Get("Content-Disposition") != `attachment; filename=meter-registry-metrology-block-2.json` {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	var doc struct {
		Channel    string        `json:"channel"`
		AsOfBlock  uint64        `json:"asOfBlock"`
		ExportedAt string        `json:"exportedAt"`
		Meters     []index.Entry `json:"meters"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if doc.Channel != "metrology" || doc.AsOfBlock != 2 || doc.ExportedAt != "2026-11-01T00:00:30Z" || len(doc.Meters) != 5 {
		t.Fatalf("export %+v", doc)
	}
	if m := doc.Meters[1]; m.Meter.ID != synth.MeterID(2) || m.Meter.Status != meter.StatusActive || m.Block != 0 || m.TxID != f.blocks[0].Txs[0].ID {
		t.Fatalf("SYN-0000002 as of block 2: %+v", m)
	}

	_, body = f.get(t, "/export/registry.json", f.session(t))
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if m := doc.Meters[1]; doc.AsOfBlock != 5 || len(doc.Meters) != 6 || m.Meter.Status != meter.StatusRevoked || m.Block != 3 ||
		m.Meter.Revocation == nil || m.Meter.Revocation.Reason != meter.ReasonKeyCompromise {
		t.Fatalf("SYN-0000002 as of the newest block: %+v", m)
	}
	if doc.Meters[5].Meter.Metadata.Model != hostileModel {
		t.Errorf("the JSON export must carry values unchanged: %q", doc.Meters[5].Meter.Metadata.Model)
	}
}
