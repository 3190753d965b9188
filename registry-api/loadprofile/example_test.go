package loadprofile_test

import (
	"fmt"
	"log"
	"time"

	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// A meter's register readings over the first hour of a day: the same seed,
// meter and time give the same values in every run.
func ExampleProfile_Readings() {
	p := loadprofile.London()
	s := loadprofile.Schedule{Start: time.Date(2026, 5, 20, 0, 0, 0, 0, time.UTC), Interval: 15 * time.Minute, Slots: 4}
	readings, err := p.Readings(p.Household(1, "PTB-0001"), s)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range readings {
		fmt.Println(r.Measurement("PTB-0001").Time, r.Seq, r.Value(), loadprofile.Unit)
	}
	// Output:
	// 2026-05-20T00:15:00Z 3356655 22680.098 kWh
	// 2026-05-20T00:30:00Z 3356670 22680.160 kWh
	// 2026-05-20T00:45:00Z 3356685 22680.251 kWh
	// 2026-05-20T01:00:00Z 3356700 22680.319 kWh
}
