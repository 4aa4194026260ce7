package hadoop

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"

	"github.com/mapflow/mapflow/backends/hadoop/yarn"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
	"github.com/mapflow/mapflow/settings"
)

func init() {
	rt.Register("hadoop", func(c *Config) (rt.Backend, error) {
		b := New(c)
		b.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		return b, nil
	})
	// A worker's store: hdfs://NAMENODE/dir, as user $HADOOP_USER_NAME, else the login name.
	remote.RegisterStore("hdfs", func(_ context.Context, u *url.URL) (remote.Store, func(), error) {
		name := os.Getenv("HADOOP_USER_NAME")
		if name == "" {
			name = os.Getenv("USER")
		}
		s, err := OpenStore(u.Host, name, u.Path)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	})
}

// DefaultContainers is how many containers run workers when the env block does not say.
const DefaultContainers = 2

// Config is the Hadoop backend's settings: an `env hadoop { ... }` block, completed by Prepare
// from the XML of hadoop_conf_dir.
type Config struct {
	rt.Common
	Containers int    `setting:"containers" default:"2" min:"1" max:"10000" help:"YARN containers running workers"`
	DistPath   string `setting:"dist_path" required:"true" help:"hdfs://NAMENODE:PORT/dir or /dir where job files and the binary are staged"`
	ConfDir    string `setting:"hadoop_conf_dir" help:"directory holding core-site.xml and yarn-site.xml (relative to the job file; ~/ is the home directory); default $HADOOP_CONF_DIR"`
	MemoryMB   int    `setting:"container_memory_mb" default:"512" min:"128" max:"1048576" help:"memory per container in MiB"`
	VCores     int    `setting:"container_vcores" default:"1" min:"1" max:"1024" help:"virtual cores per container: tasks each runs at once"`
	Queue      string `setting:"queue" default:"default" help:"YARN queue"`
	// NameNode and WebApp (the ResourceManager's REST API) are host:port; Prepare takes what
	// the block leaves out from the XML.
	NameNode string `setting:"namenode" help:"HDFS NameNode host:port; default: from dist_path or fs.defaultFS"`
	WebApp   string `setting:"resourcemanager_webapp" help:"YARN ResourceManager web address host:port; default: yarn.resourcemanager.webapp.address"`
	User     string `setting:"user" help:"the Hadoop user to run as; default $HADOOP_USER_NAME, else the login name"`
}

// Check checks the settings as written.
func (c *Config) Check() []settings.Problem {
	ps := c.Common.Check()
	if !strings.HasPrefix(c.DistPath, "hdfs://") && !path.IsAbs(c.DistPath) {
		ps = append(ps, settings.Problem{Key: "dist_path", Message: fmt.Sprintf("%q is neither an hdfs:// URL nor an absolute path", c.DistPath),
			Hint: `like "hdfs://namenode:8020/user/me/mapflow"`})
	} else if strings.ContainsAny(c.DistDir(), " \t\n\"'`$\\") {
		ps = append(ps, settings.Problem{Key: "dist_path", Message: fmt.Sprintf("%q has a space, a quote or a $", c.DistPath), Hint: "use a path without them"})
	}
	for key, v := range map[string]string{"namenode": c.NameNode, "resourcemanager_webapp": c.WebApp} {
		if _, port, err := net.SplitHostPort(v); v != "" && (err != nil || port == "") {
			ps = append(ps, settings.Problem{Key: key, Message: fmt.Sprintf("%q is not host:port", v), Hint: `like "namenode:8020"`})
		}
	}
	return ps
}

// Prepare resolves hadoop_conf_dir (relative to the job file) and takes from its XML, with
// Hadoop's defaults and ${...} expansion, the addresses the block leaves out.
func (c *Config) Prepare(context.Context) []settings.Problem {
	switch {
	case c.ConfDir == "":
		c.ConfDir = os.Getenv("HADOOP_CONF_DIR")
	case strings.HasPrefix(c.ConfDir, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			c.ConfDir = filepath.Join(home, c.ConfDir[2:])
		}
	case !filepath.IsAbs(c.ConfDir) && c.File != "":
		c.ConfDir = filepath.Join(filepath.Dir(c.File), c.ConfDir)
	}
	conf := yarn.HadoopConf{}
	if c.ConfDir != "" {
		if info, err := os.Stat(c.ConfDir); err != nil || !info.IsDir() {
			return []settings.Problem{{Key: "hadoop_conf_dir", Message: fmt.Sprintf("%s is not a directory", c.ConfDir),
				Hint: "point it at the directory holding core-site.xml and yarn-site.xml"}}
		}
		var err error
		if conf, err = yarn.ReadHadoopConf(c.ConfDir); err != nil {
			return []settings.Problem{{Key: "hadoop_conf_dir", Message: err.Error()}}
		}
	}
	if c.NameNode == "" {
		if u, err := url.Parse(c.DistPath); err == nil && u.Host != "" {
			c.NameNode = u.Host
		} else if u, err := url.Parse(conf.Get("fs.defaultFS", "")); err == nil && u.Scheme == "hdfs" {
			c.NameNode = u.Host
		}
	}
	if c.WebApp == "" {
		c.WebApp, _ = conf.Address("yarn.resourcemanager.webapp.address", 8088)
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
		return []settings.Problem{{Key: "dist_path", Message: "no NameNode", Hint: "give dist_path as hdfs://HOST:PORT/dir, set namenode, or point hadoop_conf_dir at a core-site.xml with fs.defaultFS"}}
	case c.WebApp == "":
		return []settings.Problem{{Key: "hadoop_conf_dir", Message: "no ResourceManager web address", Hint: "set resourcemanager_webapp, or point hadoop_conf_dir at a yarn-site.xml with yarn.resourcemanager.hostname or yarn.resourcemanager.webapp.address"}}
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
