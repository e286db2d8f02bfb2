package main

import (
	"flag"
	"reflect"
	"testing"
)

func TestHeaderFlag(t *testing.T) {
	var f fields
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.Var(&f, "header", "")
	err := fs.Parse([]string{"-header", "etag: \"1mjq\"", "-header", "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'"})
	if err != nil {
		t.Fatal(err)
	}
	want := fields{{"Etag", `"1mjq"`}, {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("fields = %q, want %q", f, want)
	}
	for _, bad := range []string{"no colon", ": value"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
}
