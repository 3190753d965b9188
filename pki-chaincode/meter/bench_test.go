package meter_test

import (
	"path/filepath"
	"testing"
)

// BenchmarkVerify measures one signature check per curve on the openssl
// fixtures: the cost the chaincode pays per measurement.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range testCurves {
		b.Run(tc.name, func(b *testing.B) {
			key := publicKey(b, tc.name)
			payload := readFile(b, filepath.Join(msmtDir, tc.name+".good.json"))
			sig := readFile(b, filepath.Join(msmtDir, tc.name+".sig"))
			b.ReportAllocs()
			for b.Loop() {
				if err := key.Verify(payload, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
