// Package yarn talks to Hadoop YARN for mapflow: the ResourceManager's REST API to submit, watch
// and kill applications, and the two Hadoop RPC protocols that an ApplicationMaster needs — the
// ApplicationMasterProtocol on the ResourceManager's scheduler address and the
// ContainerManagementProtocol on each NodeManager.
//
// # Design
//
// Nothing here is generated. The RPC messages are encoded by hand with protowire, only the fields
// mapflow uses, with field numbers taken from Hadoop's .proto files (RpcHeader.proto,
// IpcConnectionContext.proto, ProtobufRpcEngine2.proto and Security.proto in hadoop-common;
// yarn_protos.proto, yarn_service_protos.proto, applicationmaster_protocol.proto and
// containermanagement_protocol.proto in hadoop-yarn-api). Each area has its own file:
// wire.go (protowire helpers), records.go (ids, resources, containers, tokens), rpcproto.go
// (the RPC envelope), am.go and nm.go (the two protocols' messages and clients). Decoders skip
// fields they do not know, so newer Hadoop releases that add fields still work.
//
// The layers are:
//
//   - [RMClient]: the REST API (new application, submit, report, kill). It needs no token: on a
//     cluster with simple authentication the caller is named by the user.name query parameter
//     or by the RM's hadoop.http.staticuser.user.
//   - [RPCClient]: one Hadoop RPC connection ("hrpc", version 9), optionally authenticated with
//     SASL DIGEST-MD5 by a delegation [Token], then protobuf calls. It knows nothing of YARN.
//   - [AMClient] and [NMClient]: the ApplicationMaster's two protocols on top of RPCClient.
//   - [Credentials]: the container's token file, where the AMRMToken is.
//
// # Authentication
//
// Even on a cluster with simple authentication the ResourceManager's scheduler port accepts an
// ApplicationMaster only through SASL with the application attempt's AMRMToken (kind
// YARN_AM_RM_TOKEN, in the file named by HADOOP_TOKEN_FILE_LOCATION), and every NodeManager
// accepts an ApplicationMaster only with the NMToken that Allocate handed out for that node.
// NMTokens are sent once per node, the first time the application gets a container there:
// [AMClient] remembers them. The SASL mechanism is DIGEST-MD5 (RFC 2831) with qop "auth" only;
// clusters with hadoop.rpc.protection set to integrity or privacy are not supported.
//
// The NodeManager writes the container's token file in the Writable form (version 0) on
// Hadoop 3.4; both versions are read. The AMRMToken in it has an empty service.
//
// # Addresses
//
// The scheduler address (yarn.resourcemanager.scheduler.address) is not in a container's
// environment: YARN's own ApplicationMasters read it from yarn-site.xml in HADOOP_CONF_DIR,
// which the NodeManager passes on to containers. [SchedulerAddress] does the same; a submitter
// can also put the address into the AM's environment itself.
package yarn
