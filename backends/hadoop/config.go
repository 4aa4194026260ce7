package hadoop

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/mapflow/mapflow/lang"
)

// Config is the Hadoop backend's configuration, from an `env hadoop { ... }` block and the
// XML files of its hadoop_conf_dir.
type Config struct {
	Containers int    // YARN containers running workers (default 2)
	DistPath   string // hdfs://[namenode]/dir where jobs are staged
	ConfDir    string // hadoop_conf_dir
	MemoryMB   int    // per container (default 512)
	VCores     int    // per container (default 1)
	Queue      string // YARN queue (default "default")
	// NameNode, ResourceManager (the client RPC address, for the record), Scheduler (where
	// the ApplicationMaster registers) and WebApp (the REST API) are host:port; the
	// defaults come from the XML of ConfDir.
	NameNode        string
	ResourceManager string
	Scheduler       string
	WebApp          string
	User            string // the Hadoop user; default $HADOOP_USER_NAME, else the login name
}

// ConfigFromEnv reads an env block of kind hadoop and the XML it points at.
func ConfigFromEnv(env *lang.Env) (Config, error) {
	c := Config{Containers: 2, MemoryMB: 512, VCores: 1, Queue: "default"}
	if env == nil || env.Kind != "hadoop" {
		return c, errors.New("hadoop: the env is not of kind hadoop")
	}
	str := func(key string, dst *string) {
		if s, ok := env.Settings[key]; ok {
			if v, ok := s.Value.(string); ok {
				*dst = v
			}
		}
	}
	num := func(key string, dst *int) {
		if s, ok := env.Settings[key]; ok {
			switch v := s.Value.(type) {
			case int64:
				*dst = int(v)
			case int:
				*dst = v
			}
		}
	}
	num("containers", &c.Containers)
	num("container_memory_mb", &c.MemoryMB)
	num("container_vcores", &c.VCores)
	str("dist_path", &c.DistPath)
	str("hadoop_conf_dir", &c.ConfDir)
	str("queue", &c.Queue)
	str("namenode", &c.NameNode)
	str("resourcemanager", &c.ResourceManager)
	str("resourcemanager_webapp", &c.WebApp)
	str("user", &c.User)
	// A relative hadoop_conf_dir is relative to the job file, like the other paths in it.
	if c.ConfDir != "" && !filepath.IsAbs(c.ConfDir) && !strings.HasPrefix(c.ConfDir, "~/") && env.Pos.Filename != "" {
		c.ConfDir = filepath.Join(filepath.Dir(env.Pos.Filename), c.ConfDir)
	}
	if err := c.fill(); err != nil {
		if s, ok := env.Settings["hadoop_conf_dir"]; ok {
			return c, fmt.Errorf("%s: %w", s.Pos, err)
		}
		return c, fmt.Errorf("%s: env %s: %w", env.Pos, env.Name, err)
	}
	return c, nil
}

// fill takes what the env block left out from the XML of ConfDir, and checks the result.
func (c *Config) fill() error {
	if c.ConfDir == "" {
		c.ConfDir = os.Getenv("HADOOP_CONF_DIR")
	}
	if strings.HasPrefix(c.ConfDir, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			c.ConfDir = filepath.Join(home, c.ConfDir[2:])
		}
	}
	props := map[string]string{}
	if c.ConfDir != "" {
		for _, f := range []string{"core-site.xml", "hdfs-site.xml", "yarn-site.xml"} {
			err := readConf(filepath.Join(c.ConfDir, f), props)
			if err != nil && !(errors.Is(err, fs.ErrNotExist) && f == "hdfs-site.xml") {
				return fmt.Errorf("hadoop_conf_dir: %w", err)
			}
		}
	}
	if c.NameNode == "" {
		if u, err := url.Parse(c.DistPath); err == nil && u.Host != "" {
			c.NameNode = u.Host
		} else if u, err := url.Parse(props["fs.defaultFS"]); err == nil && u.Scheme == "hdfs" {
			c.NameNode = u.Host
		}
	}
	if c.ResourceManager == "" {
		c.ResourceManager = props["yarn.resourcemanager.address"]
	}
	if c.Scheduler == "" {
		c.Scheduler = props["yarn.resourcemanager.scheduler.address"]
	}
	if c.WebApp == "" {
		c.WebApp = props["yarn.resourcemanager.webapp.address"]
	}
	if c.User == "" {
		c.User = os.Getenv("HADOOP_USER_NAME")
	}
	if c.User == "" {
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	switch {
	case c.NameNode == "":
		return errors.New("no namenode: give dist_path as hdfs://HOST:PORT/dir, set namenode, or point hadoop_conf_dir at a core-site.xml with fs.defaultFS")
	case c.WebApp == "":
		return errors.New("no ResourceManager web address: set resourcemanager_webapp, or point hadoop_conf_dir at a yarn-site.xml with yarn.resourcemanager.webapp.address")
	case c.Scheduler == "":
		return errors.New("no ResourceManager scheduler address: point hadoop_conf_dir at a yarn-site.xml with yarn.resourcemanager.scheduler.address")
	case c.Containers < 1:
		return fmt.Errorf("containers must be at least 1, not %d", c.Containers)
	}
	return nil
}

// DistDir is the path part of DistPath: the HDFS directory jobs are staged under.
func (c Config) DistDir() string {
	if u, err := url.Parse(c.DistPath); err == nil && u.Scheme != "" {
		return u.Path
	}
	return c.DistPath
}

// readConf adds the properties of one Hadoop XML configuration file to props.
func readConf(path string, props map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var conf struct {
		Properties []struct {
			Name  string `xml:"name"`
			Value string `xml:"value"`
		} `xml:"property"`
	}
	if err := xml.Unmarshal(data, &conf); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range conf.Properties {
		props[strings.TrimSpace(p.Name)] = strings.TrimSpace(p.Value)
	}
	return nil
}
