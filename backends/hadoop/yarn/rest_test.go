package yarn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRMClient(t *testing.T) {
	var submitted map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("user.name"); got != "alice" {
			t.Errorf("%s %s: user.name = %q", r.Method, r.URL.Path, got)
		}
		switch r.Method + " " + r.URL.Path {
		case "POST /ws/v1/cluster/apps/new-application":
			// Old releases send the numbers as strings.
			io.WriteString(w, `{"application-id":"application_1700000000123_0007","maximum-resource-capability":{"memory":"8192","vCores":4}}`)
		case "POST /ws/v1/cluster/apps":
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("submit content type %q", ct)
			}
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &submitted); err != nil {
				t.Error(err)
			}
			w.WriteHeader(http.StatusAccepted)
		case "GET /ws/v1/cluster/apps/application_1700000000123_0007":
			io.WriteString(w, `{"app":{"id":"application_1700000000123_0007","state":"FINISHED","finalStatus":"SUCCEEDED","diagnostics":"ok","amHostHttpAddress":"h:8042","progress":100.0}}`)
		case "PUT /ws/v1/cluster/apps/application_1700000000123_0007/state":
			b, _ := io.ReadAll(r.Body)
			if string(b) != `{"state":"KILLED"}` {
				t.Errorf("kill body %s", b)
			}
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"state":"RUNNING"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"RemoteException":{"exception":"NotFoundException","message":"java.lang.Exception: app with id: application_1_0001 not found","javaClassName":"org.apache.hadoop.yarn.webapp.NotFoundException"}}`)
		}
	}))
	defer srv.Close()
	rm, err := NewRMClient(srv.URL+"/", "alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := rm.NewApplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != testAttempt.App || n.MaxResource != (Resource{MemoryMB: 8192, VCores: 4}) {
		t.Errorf("new application %+v", n)
	}
	err = rm.Submit(ctx, Submission{ID: n.ID, Name: "job", Resource: Resource{MemoryMB: 256, VCores: 1},
		AM: LaunchContext{
			LocalResources: map[string]LocalResource{"am": {URL: "hdfs://nn:8020/a/am", Size: 10, Timestamp: 1700000000999}},
			Environment:    map[string]string{"B": "2", "A": "1"},
			Commands:       []string{"./am", "1><LOG_DIR>/stdout"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"application-id": "application_1700000000123_0007", "application-name": "job", "application-type": "MAPFLOW",
		"queue": "default", "max-app-attempts": 1.0, "resource": map[string]any{"memory": 256.0, "vCores": 1.0},
		"am-container-spec": map[string]any{
			"local-resources": map[string]any{"entry": []any{map[string]any{"key": "am", "value": map[string]any{
				"resource": "hdfs://nn:8020/a/am", "type": "FILE", "visibility": "APPLICATION", "size": 10.0, "timestamp": 1700000000999.0}}}},
			"environment": map[string]any{"entry": []any{map[string]any{"key": "A", "value": "1"}, map[string]any{"key": "B", "value": "2"}}},
			"commands":    map[string]any{"command": "./am 1><LOG_DIR>/stdout"},
		},
	}
	if d := cmp.Diff(want, submitted); d != "" {
		t.Errorf("submitted JSON (-want +got):\n%s", d)
	}
	rep, err := rm.App(ctx, n.ID)
	if err != nil || rep.State != "FINISHED" || rep.FinalStatus != "SUCCEEDED" || !rep.Terminal() || rep.AMHostHTTPAddress != "h:8042" {
		t.Errorf("App = %+v, %v", rep, err)
	}
	if rep, err := rm.Wait(ctx, n.ID, 1); err != nil || !rep.Terminal() {
		t.Errorf("Wait = %+v, %v", rep, err)
	}
	if err := rm.Kill(ctx, n.ID); err != nil {
		t.Errorf("Kill: %v", err)
	}
	_, err = rm.App(ctx, ApplicationID{ClusterTimestamp: 1, ID: 1})
	var re *RESTError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.JavaClassName != "org.apache.hadoop.yarn.webapp.NotFoundException" {
		t.Errorf("App(unknown) = %v", err)
	}
	if want := "app with id: application_1_0001 not found"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if err := rm.Submit(ctx, Submission{AM: LaunchContext{LocalResources: map[string]LocalResource{"x": {URL: "relative/path"}}}}); err == nil {
		t.Error("a relative resource URL was accepted")
	}
	for _, bad := range []string{"", "rm:8088", "ftp://rm"} {
		if _, err := NewRMClient(bad, ""); err == nil {
			t.Errorf("NewRMClient(%q): no error", bad)
		}
	}
}
