package slo

import "time"

// BurnAlert is one multiwindow burn-rate condition: the error ratio over
// both Long and Short windows exceeds Factor times the error budget.
// Factor is how many times faster than "exactly spent at the end of the
// SLO window" the budget burns.
type BurnAlert struct {
	Severity string // "page" or "ticket"
	Long     time.Duration
	Short    time.Duration
	Factor   float64
}

// BurnAlerts are the SRE workbook's conditions for a 30-day window: a
// page when 2% of the budget goes in an hour or 5% in six hours, a ticket
// when 10% goes in a day or in three days.
var BurnAlerts = []BurnAlert{
	{"page", time.Hour, 5 * time.Minute, 14.4},
	{"page", 6 * time.Hour, 30 * time.Minute, 6},
	{"ticket", 24 * time.Hour, 2 * time.Hour, 3},
	{"ticket", 72 * time.Hour, 6 * time.Hour, 1},
}

// Windows are the windows the alerts read, shortest first.
func Windows() []time.Duration {
	return []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}
}

// BurnRate is the error ratio over a window divided by the error budget:
// 1 spends the budget exactly over the SLO window. It is 0 without events.
func BurnRate(bad, total uint64, objective float64) float64 {
	if total == 0 {
		return 0
	}
	return float64(bad) / float64(total) / round(1-objective)
}
