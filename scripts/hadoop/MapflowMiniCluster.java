// A single-JVM Hadoop cluster for mapflow's tests: HDFS (NameNode + DataNode) and YARN
// (ResourceManager + NodeManager), on loopback. Started by scripts/hadoop-minicluster, which
// compiles it with javac against the jars of scripts/hadoop/pom.xml and runs it as:
//
//   java -cp 'CLASSES:LIB/*' MapflowMiniCluster WORKDIR CONFDIR NN_PORT NN_HTTP_PORT [key=value ...]
//
// Why not org.apache.hadoop.mapreduce.MiniHadoopClusterManager (checked with 3.4.1): it starts
// the NodeManager's web app (and, for MapReduce, a JobHistoryServer); every YARN web app
// registers a Guice servlet pipeline in a static field, so the last one started answers on every
// port and the ResourceManager's REST API (/ws/v1/cluster/...) gives 404. The JobHistoryServer
// and MapReduce's ShuffleHandler also listen on 0.0.0.0. With -nomr it starts no YARN at all.
// Here the NodeManager's web app is off (a MiniYARNCluster option since Hadoop 3.4; 3.3.6 has
// no such option and its REST API gives 404 too), so the ResourceManager's REST API works.
//
// When the cluster is up it writes CONFDIR/{core,hdfs,yarn}-site.xml (what clients need),
// CONFDIR/cluster.xml (the whole configuration) and, last, CONFDIR/details.properties (ports,
// NodeManager dirs); then it sleeps until killed. On SIGTERM it kills its containers and exits
// (see shutdown()). If start-up fails it exits with status 1.

import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.server.nodemanager.containermanager.container.Container;

public class MapflowMiniCluster {
  static final String[] CORE_KEYS = {"fs.defaultFS", "hadoop.http.staticuser.user"};
  static final String[] HDFS_KEYS = {
    "dfs.namenode.rpc-address", "dfs.namenode.http-address", "dfs.replication",
    "dfs.webhdfs.enabled", "dfs.permissions.enabled"};
  static final String[] YARN_KEYS = {
    "yarn.resourcemanager.hostname", "yarn.resourcemanager.address",
    "yarn.resourcemanager.scheduler.address", "yarn.resourcemanager.resource-tracker.address",
    "yarn.resourcemanager.admin.address", "yarn.resourcemanager.webapp.address",
    "yarn.scheduler.minimum-allocation-mb", "yarn.scheduler.maximum-allocation-mb",
    "yarn.nodemanager.resource.memory-mb"};

  static volatile MiniYARNCluster yarn;
  static volatile int exitStatus = 0;

  public static void main(String[] args) {
    Runtime.getRuntime().addShutdownHook(new Thread(MapflowMiniCluster::shutdown,
        "mapflow-minicluster-shutdown"));
    try {
      run(args);
    } catch (Throwable t) {
      // Hadoop's non-daemon threads would keep a half-started JVM alive: exit instead.
      System.err.println("MAPFLOW-MINICLUSTER-FAILED");
      t.printStackTrace();
      exitStatus = 1;
      System.exit(1);
    }
  }

  static void run(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println("usage: MapflowMiniCluster WORKDIR CONFDIR NN_PORT NN_HTTP_PORT [key=value ...]");
      System.exit(2);
    }
    File work = new File(args[0]).getAbsoluteFile();
    File confDir = new File(args[1]).getAbsoluteFile();
    int nnPort = Integer.parseInt(args[2]);
    int nnHttpPort = Integer.parseInt(args[3]);

    Configuration conf = new YarnConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(work, "dfs").getPath());
    // Use the configured RM addresses instead of picking ephemeral ones.
    conf.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, true);
    for (int i = 4; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      if (kv.length != 2) {
        System.err.println("bad key=value: " + args[i]);
        System.exit(2);
      }
      conf.set(kv[0], kv[1]);
    }

    MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf)
        .nameNodePort(nnPort).nameNodeHttpPort(nnHttpPort)
        .numDataNodes(1).format(true).build();
    dfs.waitActive();
    conf.set("fs.defaultFS", "hdfs://127.0.0.1:" + dfs.getNameNodePort());
    conf.set("dfs.namenode.rpc-address", "127.0.0.1:" + dfs.getNameNodePort());
    conf.set("dfs.namenode.http-address", "127.0.0.1:" + dfs.getNameNode().getHttpAddress().getPort());

    // 1 NodeManager, 1 local dir, 1 log dir, NodeManager web app off (see above).
    yarn = new MiniYARNCluster("mapflow", 1, 1, 1, false);
    yarn.init(conf);
    yarn.start();

    if (!yarn.waitForNodeManagersToConnect(60_000)) {
      throw new IllegalStateException("NodeManager did not register with the ResourceManager");
    }

    Configuration live = new Configuration(yarn.getConfig());
    NodeManager nm = yarn.getNodeManager(0);
    Configuration nmConf = nm.getConfig();

    confDir.mkdirs();
    writeXml(live, CORE_KEYS, new File(confDir, "core-site.xml"));
    writeXml(live, HDFS_KEYS, new File(confDir, "hdfs-site.xml"));
    writeXml(live, YARN_KEYS, new File(confDir, "yarn-site.xml"));
    writeXml(live, null, new File(confDir, "cluster.xml"));

    Map<String, String> d = new TreeMap<>();
    d.put("hdfs.address", "127.0.0.1:" + dfs.getNameNodePort());
    d.put("hdfs.http.address", live.get("dfs.namenode.http-address"));
    // Once started, the RM records its bound addresses as localhost:PORT (it listens on 127.0.0.1).
    d.put("yarn.rm.address", loopback(live.get("yarn.resourcemanager.address")));
    d.put("yarn.rm.webapp.address", loopback(live.get("yarn.resourcemanager.webapp.address")));
    d.put("yarn.rm.scheduler.address", loopback(live.get("yarn.resourcemanager.scheduler.address")));
    d.put("yarn.nm.id", nm.getNMContext().getNodeId().toString());
    d.put("yarn.nm.local-dirs", nmConf.get("yarn.nodemanager.local-dirs"));
    d.put("yarn.nm.log-dirs", nmConf.get("yarn.nodemanager.log-dirs"));
    d.put("pid", Long.toString(ProcessHandle.current().pid()));
    StringBuilder sb = new StringBuilder();
    for (Map.Entry<String, String> e : d.entrySet()) {
      sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
    }
    File det = new File(confDir, "details.properties");
    File tmp = new File(confDir, "details.properties.tmp");
    Files.write(tmp.toPath(), sb.toString().getBytes(StandardCharsets.UTF_8));
    Files.move(tmp.toPath(), det.toPath(), StandardCopyOption.ATOMIC_MOVE);
    System.out.println("MAPFLOW-MINICLUSTER-READY " + d);

    while (true) {
      Thread.sleep(60_000);
    }
  }

  // Runs on SIGTERM (and System.exit). What matters is that no container outlives the cluster;
  // the rest of a graceful stop is not needed (the script wipes WORKDIR at each start) and is
  // slow: the NodeManager waits ~7 s for finished applications whose log deletion is scheduled
  // hours ahead, then ~10 s for that scheduler to drain. So: stop YARN in the background (the
  // NodeManager first kills its containers: SIGTERM to each container's process group, SIGKILL
  // 250 ms later), wait until no container is live and no child process is left (at most 10 s),
  // SIGKILL any child process still there, and halt. HDFS needs no shutdown.
  static void shutdown() {
    MiniYARNCluster y = yarn;
    if (y != null) {
      Thread stopper = new Thread(() -> {
        try {
          y.stop();
        } catch (Throwable t) {
          t.printStackTrace();
        }
      }, "mapflow-yarn-stop");
      stopper.setDaemon(true);
      stopper.start();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (System.nanoTime() < deadline && !(containersDone(y) && childrenGone())) {
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          break;
        }
      }
    }
    ProcessHandle.current().descendants().forEach(p -> {
      System.err.println("mapflow-minicluster: killing leftover process " + p.pid() + " "
          + p.info().commandLine().orElse(""));
      p.destroyForcibly();
    });
    System.err.println("mapflow-minicluster: stopped");
    System.err.flush();
    System.out.flush();
    Runtime.getRuntime().halt(exitStatus);
  }

  static boolean containersDone(MiniYARNCluster y) {
    try {
      NodeManager nm = y.getNodeManager(0);
      if (nm == null || nm.getNMContext() == null) return true;
      for (Container c : nm.getNMContext().getContainers().values()) {
        if (!c.isContainerInFinalStates()) return false;
      }
      return true;
    } catch (Throwable t) {
      return true; // not started far enough to have containers
    }
  }

  static boolean childrenGone() {
    return ProcessHandle.current().descendants().noneMatch(ProcessHandle::isAlive);
  }

  // localhost:PORT -> 127.0.0.1:PORT: clients get the address the servers listen on, whatever
  // localhost resolves to on their side (::1 first on some systems).
  static String loopback(String v) {
    return v != null && v.startsWith("localhost:") ? "127.0.0.1:" + v.substring("localhost:".length()) : v;
  }

  // Writes the given keys of conf (or all of it when keys is null) as a Hadoop XML file.
  static void writeXml(Configuration conf, String[] keys, File out) throws Exception {
    Configuration c = conf;
    if (keys != null) {
      c = new Configuration(false);
      for (String k : keys) {
        String v = conf.get(k);
        if (v == null) continue;
        c.set(k, loopback(v));
      }
    }
    File tmp = new File(out.getPath() + ".tmp");
    try (OutputStream os = new FileOutputStream(tmp)) {
      c.writeXml(os);
    }
    Files.move(tmp.toPath(), out.toPath(), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }
}
