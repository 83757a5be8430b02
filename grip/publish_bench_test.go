package grip

import (
	"strings"
	"testing"
)

// The worst publish bodies for memory: as many small elements as fit in
// the control API's 1,000,000 bytes. ReportMetric gives the bytes
// allocated per body byte; BenchmarkParsePublishWorstCase's allocs show
// what one such body costs.
func worstCaseBodies() map[string][]byte {
	const size = 1_000_000
	fill := func(head, elem, tail string) []byte {
		var b strings.Builder
		b.WriteString(head)
		for i := 0; b.Len()+len(elem)+len(tail)+1 < size; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(elem)
		}
		b.WriteString(tail)
		return []byte(b.String())
	}
	return map[string][]byte{
		"content-filters": fill(`{"items":[{"channel":"c","formats":{"http-stream":{"content":"x","content-filters":[`, `""`, `]}}}]}`),
		"meta":            fill(`{"items":[{"channel":"c","meta":{`, `"":""`, `},"formats":{"http-stream":{"content":"x"}}}]}`),
		"items":           fill(`{"items":[`, `{"channel":"c","formats":{"http-stream":{"content":"x"}}}`, `]}`),
		"unknown-formats": fill(`{"items":[{"channel":"c","formats":{"http-stream":{"content":"x"},`, `"":0`, `}}]}`),
		"headers":         fill(`{"items":[{"channel":"c","formats":{"http-response":{"body":"x","headers":[`, `["a","b"]`, `]}}}]}`),
	}
}

// worstWithinLimits is the costliest body the limits let through: the
// most items, each with the most meta, filters and headers, up to the
// size limit.
func worstWithinLimits() []byte {
	meta := strings.TrimSuffix(strings.Repeat(`"":"",`, MaxItemMeta), ",")
	filters := strings.TrimSuffix(strings.Repeat(`"",`, MaxContentFilters), ",")
	headers := strings.TrimSuffix(strings.Repeat(`["a",""],`, 30), ",")
	item := `{"channel":"c","meta":{` + meta + `},"formats":{"http-response":{"body":"","headers":[` + headers +
		`],"content-filters":[` + filters + `]},"http-stream":{"content":"","content-filters":[` + filters + `]}}}`
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; i < MaxPublishItems && b.Len()+len(item)+3 < 1_000_000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkParsePublishWorstCase(b *testing.B) {
	b.Run("within-limits", func(b *testing.B) {
		body := worstWithinLimits()
		if _, _, err := ParsePublish(body); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_, _, _ = ParsePublish(body)
		}
	})
	for name, body := range worstCaseBodies() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _, _ = ParsePublish(body)
			}
		})
	}
}
