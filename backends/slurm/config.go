package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/settings"
)

func init() {
	rt.Register("slurm", func(c *Config) (rt.Backend, error) {
		b := New(c)
		b.Log = os.Stderr
		return b, nil
	})
}

// Config is the Slurm backend's settings: an `env slurm { ... }` block.
type Config struct {
	rt.Common
	Partition   string `setting:"partition" help:"the partition the array runs in (sbatch --partition); default: the cluster's default"`
	Time        string `setting:"time" help:"time limit of each array task (sbatch --time), like \"01:00:00\"; default: the partition's"`
	CPUsPerTask int    `setting:"cpus_per_task" default:"1" min:"1" max:"1024" help:"CPUs of each array task (sbatch --cpus-per-task): tasks each runs at once"`
	Mem         string `setting:"mem" help:"memory of each array task (sbatch --mem), like \"2G\"; default: the partition's"`
	// ArraySize is how many array tasks (workers) the array has; each claims chunks of
	// tasks until none is left, so a job of a million tasks needs no million array tasks.
	ArraySize   int      `setting:"array_size" min:"1" max:"100000" help:"array tasks (workers) in the job array; default: array_parallelism, else 4"`
	Parallelism int      `setting:"array_parallelism" min:"1" max:"100000" help:"at most this many array tasks at once (sbatch --array=...%N)"`
	WorkDir     string   `setting:"work_dir" required:"true" help:"a directory the compute nodes share with this machine, where jobs are staged (relative to the job file; ~/ is the home directory)"`
	SbatchArgs  []string `setting:"sbatch_args" help:"more sbatch options, like [\"--account=lab\", \"--qos=short\"]"`
}

var (
	// slurmTime is what sbatch --time takes: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM,
	// D-HH:MM:SS, or no limit.
	slurmTime = regexp.MustCompile(`^(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE|unlimited|infinite)$`)
	// slurmMem is what sbatch --mem takes: a size, in MB unless a unit follows.
	slurmMem = regexp.MustCompile(`^\d{1,12}([KMGTkmgt][Bb]?)?$`)
	// ownOptions are the sbatch options mapflow sets itself, or that would stop it from
	// reading the array's id (--wait, --test-only, --help...).
	ownOptions = []string{"-a", "--array", "--parsable", "-o", "--output", "-e", "--error", "-D", "--chdir",
		"-J", "--job-name", "--wrap", "-p", "--partition", "-t", "--time", "-c", "--cpus-per-task", "--mem",
		"-W", "--wait", "--test-only", "-h", "--help", "-V", "--version", "--usage"}
)

// ownOption is the option of ownOptions that arg sets, or "": sbatch takes a short option's
// value attached (-a0-3) and a long option by any unambiguous prefix (--arr=0-3).
func ownOption(arg string) string {
	if name, ok := strings.CutPrefix(arg, "--"); ok {
		name, _, _ = strings.Cut(name, "=")
		for _, o := range ownOptions {
			if long, ok := strings.CutPrefix(o, "--"); ok && name != "" && strings.HasPrefix(long, name) {
				return o
			}
		}
		return ""
	}
	if len(arg) >= 2 && arg[0] == '-' && slices.Contains(ownOptions, arg[:2]) {
		return arg[:2]
	}
	return ""
}

// Check checks the settings as written.
func (c *Config) Check() []settings.Problem {
	ps := c.Common.Check()
	if c.Time != "" && !slurmTime.MatchString(c.Time) {
		ps = append(ps, settings.Problem{Key: "time", Message: fmt.Sprintf("%q is not a Slurm time", c.Time), Hint: `like "30" (minutes), "01:00:00" or "2-00:00:00"`})
	}
	if c.Mem != "" && !slurmMem.MatchString(c.Mem) {
		ps = append(ps, settings.Problem{Key: "mem", Message: fmt.Sprintf("%q is not a Slurm memory size", c.Mem), Hint: `like "2G" or "500M"`})
	}
	if strings.ContainsAny(c.WorkDir, "'\n\x00") {
		ps = append(ps, settings.Problem{Key: "work_dir", Message: "has a quote or a newline", Hint: "use a path without them"})
	}
	if c.WorkDir == "" {
		ps = append(ps, settings.Problem{Key: "work_dir", Message: "must not be empty", Hint: "name a directory the compute nodes share"})
	}
	for _, a := range c.SbatchArgs {
		if name := ownOption(a); name != "" {
			ps = append(ps, settings.Problem{Key: "sbatch_args", Message: fmt.Sprintf("%s (in %q) is mapflow's to set", name, a),
				Hint: "mapflow sets the array, job name, output, working directory and script; partition, time, cpus_per_task, mem, array_size and array_parallelism are settings of their own"})
		} else if !strings.HasPrefix(a, "-") {
			ps = append(ps, settings.Problem{Key: "sbatch_args", Message: fmt.Sprintf("%q is not an option", a), Hint: `write each as one string, like "--account=lab"`})
		}
	}
	return ps
}

// Prepare resolves work_dir and checks, before anything is staged, that this machine can
// submit: sbatch on PATH, slurmctld answering, the partition known, work_dir writable.
func (c *Config) Prepare(ctx context.Context) []settings.Problem {
	switch {
	case strings.HasPrefix(c.WorkDir, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			c.WorkDir = filepath.Join(home, c.WorkDir[2:])
		}
	case !filepath.IsAbs(c.WorkDir) && c.File != "":
		c.WorkDir = filepath.Join(filepath.Dir(c.File), c.WorkDir)
	}
	if abs, err := filepath.Abs(c.WorkDir); err == nil {
		c.WorkDir = abs
	}
	if info, err := os.Stat(c.WorkDir); err != nil || !info.IsDir() {
		return []settings.Problem{{Key: "work_dir", Message: fmt.Sprintf("%s is not a directory", c.WorkDir),
			Hint: "make it, on a file system the compute nodes share"}}
	}
	if f, err := os.CreateTemp(c.WorkDir, ".mapflow-check-"); err != nil {
		return []settings.Problem{{Key: "work_dir", Message: fmt.Sprintf("%s is not writable: %v", c.WorkDir, err)}}
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	for _, cmd := range []string{"sbatch", "squeue", "scancel", "scontrol", "sinfo"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return []settings.Problem{{Message: fmt.Sprintf("%s is not on PATH", cmd), Hint: "run mapflow where Slurm's commands are, such as a login node"}}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := command(ctx, "sinfo", "-h", "-o", "%R")
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return []settings.Problem{{Message: "interrupted while asking slurmctld (sinfo)"}}
	}
	if err != nil {
		return []settings.Problem{{Message: fmt.Sprintf("slurmctld does not answer: %v", err), Hint: "is the cluster up? sinfo must work here"}}
	}
	if c.Partition != "" {
		parts := strings.Fields(out)
		if !slices.Contains(parts, c.Partition) {
			return []settings.Problem{{Key: "partition", Message: fmt.Sprintf("the cluster has no partition %q", c.Partition),
				Hint: "its partitions are " + strings.Join(parts, ", ")}}
		}
	}
	return nil
}

// size is the array's size: array_size, else array_parallelism, else 4.
func (c *Config) size() int {
	switch {
	case c.ArraySize > 0:
		return c.ArraySize
	case c.Parallelism > 0:
		return c.Parallelism
	}
	return 4
}

// command runs a Slurm command and returns its standard output; its standard error is the
// error's text when it fails.
func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	// A command that is a script may leave a child holding its output: once ctx ends, Wait
	// gives up on the pipes after this long.
	cmd.WaitDelay = 2 * time.Second
	// A process group of its own: a Ctrl-C at the terminal signals the whole foreground
	// group, and an sbatch killed halfway may have submitted an array without telling its id.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		switch ctx.Err() {
		case context.DeadlineExceeded:
			return string(out), fmt.Errorf("%s did not answer in time", name)
		case context.Canceled:
			return string(out), fmt.Errorf("%s: interrupted", name)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			if !strings.HasPrefix(msg, name+":") {
				msg = name + ": " + msg
			}
			return string(out), errors.New(msg)
		}
		return string(out), fmt.Errorf("%s: %w", name, err)
	}
	return string(out), nil
}
