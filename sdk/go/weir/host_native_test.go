//go:build !wasip1

package weir

import "testing"

func TestHostServicesNatively(t *testing.T) {
	SetTestConfig(map[string]string{"greeting": "hi"})
	defer SetTestConfig(nil)
	if v, ok := Config("greeting"); !ok || v != "hi" {
		t.Errorf("%q %v", v, ok)
	}
	if _, ok := Config("nope"); ok {
		t.Error("an unset key")
	}
	if e := ConfigEntries(); len(e) != 1 || e["greeting"] != "hi" {
		t.Errorf("%v", e)
	}
	TestCounters()
	CounterAdd("n", 2)
	CounterAdd("n", 3)
	if c := TestCounters(); c["n"] != 5 {
		t.Errorf("%v", c)
	}
}
