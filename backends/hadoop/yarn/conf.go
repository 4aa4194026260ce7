package yarn

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// HadoopConf holds Hadoop configuration properties read from a configuration directory.
type HadoopConf map[string]string

// confFiles are read in this order, later ones overriding earlier ones, as Hadoop layers them.
var confFiles = []string{"core-site.xml", "hdfs-site.xml", "yarn-site.xml"}

// ReadHadoopConf reads core-site.xml, hdfs-site.xml and yarn-site.xml from dir (a
// HADOOP_CONF_DIR); missing files are skipped, but at least one must exist.
func ReadHadoopConf(dir string) (HadoopConf, error) {
	conf := HadoopConf{}
	found := false
	for _, name := range confFiles {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("yarn: hadoop conf: %w", err)
		}
		found = true
		var doc struct {
			Properties []struct {
				Name  string `xml:"name"`
				Value string `xml:"value"`
			} `xml:"property"`
		}
		if err := xml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("yarn: hadoop conf %s: %w", path, err)
		}
		for _, p := range doc.Properties {
			conf[strings.TrimSpace(p.Name)] = strings.TrimSpace(p.Value)
		}
	}
	if !found {
		return nil, fmt.Errorf("yarn: hadoop conf: none of %s in %s", strings.Join(confFiles, ", "), dir)
	}
	return conf, nil
}

// Get returns a property with ${name} and ${env.NAME} references expanded, or def when it is
// not set.
func (c HadoopConf) Get(key, def string) string {
	v, ok := c[key]
	if !ok {
		v = def
	}
	return c.expand(v, 0)
}

func (c HadoopConf) expand(v string, depth int) string {
	if depth > 20 {
		return v
	}
	var sb strings.Builder
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '}')
		if j < 0 {
			break
		}
		name := v[i+2 : i+j]
		sb.WriteString(v[:i])
		if env, ok := strings.CutPrefix(name, "env."); ok {
			sb.WriteString(os.Getenv(env))
		} else if r, ok := c[name]; ok {
			sb.WriteString(c.expand(r, depth+1))
		} else {
			sb.WriteString(v[i : i+j+1])
		}
		v = v[i+j+1:]
	}
	sb.WriteString(v)
	return sb.String()
}

// SchedulerAddress returns yarn.resourcemanager.scheduler.address, defaulting like Hadoop to
// ${yarn.resourcemanager.hostname}:8030. A wildcard host (0.0.0.0, as when nothing is set) is
// an error: it names no server to connect to. ResourceManager HA (rm-ids) is not supported.
func (c HadoopConf) SchedulerAddress() (string, error) {
	return c.Address("yarn.resourcemanager.scheduler.address", 8030)
}

// Address returns the ResourceManager address property key, defaulting like Hadoop to
// ${yarn.resourcemanager.hostname}:port. A wildcard host (0.0.0.0, as when nothing is set) is
// an error: it names no server to connect to. ResourceManager HA (rm-ids) is not supported.
func (c HadoopConf) Address(key string, port int) (string, error) {
	if strings.EqualFold(c.Get("yarn.resourcemanager.ha.enabled", "false"), "true") {
		return "", fmt.Errorf("yarn: ResourceManager HA (rm-ids %q) is not supported; set the active ResourceManager's %s", c.Get("yarn.resourcemanager.ha.rm-ids", ""), key)
	}
	addr := c.Get(key, fmt.Sprintf("${yarn.resourcemanager.hostname}:%d", port))
	if strings.Contains(addr, "${yarn.resourcemanager.hostname}") {
		return "", fmt.Errorf("yarn: %s is not set and names no host (set it or yarn.resourcemanager.hostname)", key)
	}
	if !strings.Contains(addr, ":") {
		addr += fmt.Sprintf(":%d", port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || strings.Contains(addr, "${") {
		return "", fmt.Errorf("yarn: %s %q is not host:port", key, addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "", fmt.Errorf("yarn: %s %q names no host (set it or yarn.resourcemanager.hostname)", key, addr)
	}
	return addr, nil
}

// SchedulerAddressFromEnv finds the scheduler address the way YARN's own ApplicationMasters do:
// from yarn-site.xml in $HADOOP_CONF_DIR (which the NodeManager passes on to containers), else
// in $YARN_CONF_DIR.
func SchedulerAddressFromEnv() (string, error) {
	var errs []error
	for _, env := range []string{"HADOOP_CONF_DIR", "YARN_CONF_DIR"} {
		dir := os.Getenv(env)
		if dir == "" {
			continue
		}
		conf, err := ReadHadoopConf(dir)
		if err == nil {
			var addr string
			if addr, err = conf.SchedulerAddress(); err == nil {
				return addr, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s=%s: %w", env, dir, err))
	}
	if len(errs) == 0 {
		return "", errors.New("yarn: no scheduler address: neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set")
	}
	return "", errors.Join(errs...)
}
