package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mapflow/mapflow/catalog"
)

func init() {
	// yarnapp JOB STATE: the YARN application of JOB's latest run reaches STATE (FINISHED,
	// KILLED, ...) within 60 s, as the ResourceManager's REST API reports it: its state, or
	// its final status (a canceled job's application is KILLED when the driver's kill comes
	// first, FINISHED with final status KILLED when its ApplicationMaster saw the cancel and
	// unregistered first).
	scriptCmds["yarnapp"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: yarnapp JOB STATE")
		}
		cat, err := catalog.Open(ts.Getenv("MAPFLOW_CATALOG"))
		ts.Check(err)
		job, err := cat.FindJob(context.Background(), args[0])
		cat.Close()
		ts.Check(err)
		rm := ts.Getenv("MAPFLOW_YARN_RM")
		var last string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			resp, err := http.Get(rm + "/ws/v1/cluster/apps?applicationTypes=MAPFLOW")
			ts.Check(err)
			var body struct {
				Apps struct {
					App []struct{ ID, Name, State, FinalStatus string }
				}
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			ts.Check(err)
			for _, a := range body.Apps.App {
				if strings.Contains(a.Name, job.ID) {
					last = a.ID + " " + a.State + "/" + a.FinalStatus
					if a.State == args[1] || a.FinalStatus == args[1] {
						ts.Logf("%s", last)
						return
					}
				}
			}
		}
		ts.Fatalf("the YARN application of job %s did not reach %s: last seen %q", job.ID, args[1], last)
	}
}
