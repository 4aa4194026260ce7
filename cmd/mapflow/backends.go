package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/mapflow/mapflow/backends/ec2"
	"github.com/mapflow/mapflow/backends/hadoop"
	"github.com/mapflow/mapflow/backends/local"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

// newBackend builds the backend for an env block. Every backend is wired here and only here.
func newBackend(env *lang.Env) (rt.Backend, error) {
	switch env.Kind {
	case "local":
		cfg, err := local.ConfigFromEnv(env)
		if err != nil {
			return nil, err
		}
		return local.New(cfg), nil
	case "ec2":
		cfg, err := ec2.ConfigFromEnv(env)
		if err != nil {
			return nil, err
		}
		b := ec2.New(cfg)
		b.Log = os.Stderr
		return b, nil
	case "hadoop":
		cfg, err := hadoop.ConfigFromEnv(env)
		if err != nil {
			return nil, &exitError{code: exitBadInput, err: err}
		}
		b := hadoop.New(&cfg)
		b.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		return b, nil
	default:
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf(
			"%s: env %s is of kind %s, which this build of mapflow cannot run yet; pick a local env with --env",
			env.Pos, env.Name, env.Kind)}
	}
}

// openStore opens the staging store a worker is pointed at: hdfs://NAMENODE/dir (user from
// $HADOOP_USER_NAME, else the login name) or file:///dir.
func openStore(raw string) (remote.Store, func(), error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, usageErr("--store %q: %v", raw, err)
	}
	switch u.Scheme {
	case "file":
		return remote.DirStore(u.Path), func() {}, nil
	case "hdfs":
		user := os.Getenv("HADOOP_USER_NAME")
		if user == "" {
			user = os.Getenv("USER")
		}
		s, err := hadoop.OpenStore(u.Host, user, u.Path)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	case "s3":
		// s3://bucket/prefix?region=R&endpoint=URL; credentials from the SDK's default chain.
		s, err := ec2.OpenStore(context.Background(), raw)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	}
	return nil, nil, usageErr("--store %q: use hdfs://NAMENODE:PORT/dir, s3://BUCKET/PREFIX or file:///dir", raw)
}
