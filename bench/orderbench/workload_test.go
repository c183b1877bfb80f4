package main

import (
	"math/rand"
	"testing"
)

func TestZipfSkew(t *testing.T) {
	w, err := newWorkload(workloadZipf, "z", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	pick := w.picker(r)
	const n = 200_000
	counts := map[string]int{}
	for range n {
		counts[pick()]++
	}
	first, second, tenth := counts[w.skus[0]], counts[w.skus[1]], counts[w.skus[9]]
	if !(first > second && second > tenth) {
		t.Errorf("zipf ranks not decreasing: %d, %d, %d", first, second, tenth)
	}
	// With s = 1.1 over 10 000 SKUs the top SKU gets roughly 10–35 % of the traffic.
	if share := float64(first) / n; share < 0.10 || share > 0.35 {
		t.Errorf("top SKU share %.3f outside 0.10..0.35", share)
	}
	if len(counts) < 1000 {
		t.Errorf("only %d distinct SKUs drawn: the tail is missing", len(counts))
	}
}

func TestUniformCoversAndHotIsOne(t *testing.T) {
	w, _ := newWorkload(workloadUniform, "u", 100)
	pick := w.picker(rand.New(rand.NewSource(2)))
	seen := map[string]bool{}
	for range 5000 {
		seen[pick()] = true
	}
	if len(seen) != 100 {
		t.Errorf("uniform drew %d of 100 SKUs", len(seen))
	}
	h, _ := newWorkload(workloadHot, "h", 10_000)
	if len(h.skus) != 1 {
		t.Errorf("hot has %d SKUs, want 1", len(h.skus))
	}
	if _, err := newWorkload("nope", "x", 1); err == nil {
		t.Error("unknown workload accepted")
	}
}

func TestSeededReproducible(t *testing.T) {
	seq := func(seed int64) []op {
		w, _ := newWorkload(workloadMixed, "m", 500)
		r := rand.New(rand.NewSource(seed))
		pick := w.picker(r)
		var out []op
		for i := range 1000 {
			o := w.nextOp(r, pick)
			if o.Kind == opCheckout {
				w.addOrder("o_" + string(rune('A'+i%26)))
			}
			out = append(out, o)
		}
		return out
	}
	a, b, c := seq(5), seq(5), seq(6)
	same := func(x, y []op) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed gave different sequences")
	}
	if same(a, c) {
		t.Error("different seeds gave the same sequence")
	}
}

func TestMixedShareAndPoolBound(t *testing.T) {
	w, _ := newWorkload(workloadMixed, "m", 10)
	r := rand.New(rand.NewSource(3))
	pick := w.picker(r)
	kinds := map[opKind]int{}
	for i := range 20_000 {
		o := w.nextOp(r, pick)
		kinds[o.Kind]++
		if o.Kind == opCheckout {
			w.addOrder("id" + string(rune(i)))
		}
		if len(w.orders) > mixedOrderPoolMax {
			t.Fatalf("order pool grew to %d", len(w.orders))
		}
	}
	if kinds[opPay] == 0 || kinds[opCancel] == 0 || kinds[opGetOrder] == 0 || kinds[opGetSKU] == 0 {
		t.Errorf("missing op kinds: %v", kinds)
	}
	if share := float64(kinds[opCheckout]) / 20_000; share < 0.45 || share > 0.6 {
		t.Errorf("checkout share %.2f, want about 0.5", share)
	}
}

func TestOrderID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"o_01ABC","status":"reserved"}`: "o_01ABC",
		`{"order_id":"x", "id": "o_2"}`:        "o_2",
		`{"status":"reserved","items":[]}`:     "",
		`{"id":12}`:                            "",
	} {
		if got := orderID([]byte(body)); got != want {
			t.Errorf("orderID(%s) = %q, want %q", body, got, want)
		}
	}
}
