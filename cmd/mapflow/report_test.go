package main

import "testing"

// A job id from an older catalog may hold a path: the report's default file stays here.
func TestSafeFileName(t *testing.T) {
	for in, want := range map[string]string{
		"add-20261125-1":            "add-20261125-1",
		"../../../tmp/x-20261125-1": "___.._.._tmp_x-20261125-1",
		".hidden":                   "_hidden",
		"a/b\\c":                    "a_b_c",
		"":                          "job",
	} {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
