// Package hadoop runs a job's tasks in YARN containers, with the job's files in HDFS.
//
// The driver stages the job under dist_path/JOBID (readable by its owner only) through the
// runtime/remote protocol, copies the mapflow binary there, and submits a YARN application
// through the ResourceManager's REST API whose ApplicationMaster is that same binary
// (`mapflow yarn-am`). The ApplicationMaster registers with the ResourceManager, asks for the
// env block's containers, starts `mapflow worker` in each, replaces containers that die (and
// marks them lost, so their chunks run again), and unregisters SUCCEEDED when every worker
// finished, or FAILED with diagnostics. The driver polls HDFS for results as they arrive.
package hadoop
