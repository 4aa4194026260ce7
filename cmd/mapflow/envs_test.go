package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mapflow/mapflow/settings"
)

// TestREADMESettings: the README's table of env settings names exactly the settings the
// backends declare ("every kind" rows name those every kind takes).
func TestREADMESettings(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "### Environments")
	if start < 0 {
		t.Fatal("README has no Environments section")
	}
	table := text[start:]
	table = table[:strings.Index(table, "\n\n`")]
	documented := map[string][]string{}
	kind := ""
	key := regexp.MustCompile("`([a-z0-9_]+)`")
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "kind") || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		if k := strings.Trim(strings.TrimSpace(cells[1]), "`"); k != "" {
			kind = k
		}
		for _, m := range key.FindAllStringSubmatch(cells[2], -1) {
			documented[kind] = append(documented[kind], m[1])
		}
	}
	common := documented["every kind"]
	for _, name := range settings.Kinds() {
		if name == "testkind" {
			continue // this package's test backend
		}
		k, _ := settings.Lookup(name)
		want := append(slices.Clone(documented[name]), common...)
		slices.Sort(want)
		if got := k.Keys(); !slices.Equal(got, want) {
			t.Errorf("env %s: the backend declares %v, the README documents %v", name, got, want)
		}
		delete(documented, name)
	}
	delete(documented, "every kind")
	for name := range documented {
		t.Errorf("the README documents env kind %s, which no backend registers", name)
	}
}
