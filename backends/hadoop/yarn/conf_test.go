package yarn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, dir, name string, props map[string]string) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0"?><configuration>`)
	for _, k := range sortedKeys(props) {
		sb.WriteString("<property><name>" + k + "</name><value>" + props[k] + "</value><source>x</source></property>\n")
	}
	sb.WriteString("</configuration>")
	if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSchedulerAddress(t *testing.T) {
	for _, c := range []struct {
		name  string
		props map[string]string
		want  string // "" means an error
	}{
		{"explicit", map[string]string{"yarn.resourcemanager.scheduler.address": "127.0.0.1:35073"}, "127.0.0.1:35073"},
		{"from hostname", map[string]string{"yarn.resourcemanager.hostname": "rm.example"}, "rm.example:8030"},
		{"expanded", map[string]string{"yarn.resourcemanager.hostname": "rm2", "yarn.resourcemanager.scheduler.address": "${yarn.resourcemanager.hostname}:9030"}, "rm2:9030"},
		{"nothing set", map[string]string{"fs.defaultFS": "hdfs://nn"}, ""},
		{"wildcard", map[string]string{"yarn.resourcemanager.scheduler.address": "0.0.0.0:8030"}, ""},
		{"HA", map[string]string{"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1,rm2"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConf(t, dir, "core-site.xml", map[string]string{"fs.defaultFS": "hdfs://nn:8020"})
			writeConf(t, dir, "yarn-site.xml", c.props)
			conf, err := ReadHadoopConf(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := conf.SchedulerAddress()
			if c.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %s", got, err, c.want)
			}
			t.Setenv("HADOOP_CONF_DIR", dir)
			t.Setenv("YARN_CONF_DIR", "")
			if got, err := SchedulerAddressFromEnv(); err != nil || got != c.want {
				t.Fatalf("from env: %q, %v", got, err)
			}
		})
	}
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("YARN_CONF_DIR", "")
	if _, err := SchedulerAddressFromEnv(); err == nil {
		t.Error("no conf dir: no error")
	}
	if _, err := ReadHadoopConf(t.TempDir()); err == nil {
		t.Error("empty conf dir: no error")
	}
}

func TestConfGet(t *testing.T) {
	t.Setenv("MAPFLOW_TEST_X", "ex")
	c := HadoopConf{"a": "${b}-${env.MAPFLOW_TEST_X}", "b": "${c}", "c": "see", "loop": "${loop}"}
	for k, want := range map[string]string{"a": "see-ex", "loop": "${loop}", "missing": "def"} {
		if got := c.Get(k, "def"); got != want {
			t.Errorf("Get(%s) = %q, want %q", k, got, want)
		}
	}
}
