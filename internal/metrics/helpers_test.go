package metrics_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"coffer/internal/metrics"
)

// find returns the sample of family name whose labels include want (nil
// when there is none).
func find(t *testing.T, m *metrics.Metrics, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return s
		}
	}
	return nil
}

// value is a counter's or gauge's value (0 when absent).
type value float64

func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) value {
	t.Helper()
	s := find(t, m, name, labels)
	if s == nil {
		return 0
	}
	if s.Counter != nil {
		return value(s.Counter.GetValue())
	}
	return value(s.Gauge.GetValue())
}

func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	return float64(counter(t, m, name, nil))
}

func histCount(t *testing.T, m *metrics.Metrics, name, typ string) uint64 {
	t.Helper()
	s := find(t, m, name, map[string]string{"type": typ})
	if s == nil {
		return 0
	}
	return s.GetHistogram().GetSampleCount()
}
