"""A SPIFFE Workload API client that shares no code with Tessera: grpcio plus protoc's messages.

Usage: workload_client.py GEN_DIR SOCKET_PATH AUDIENCE AUDIENCE

GEN_DIR holds what `protoc --python_out=GEN_DIR -I proto proto/spiffe/workload.proto` wrote. The
stubs are written by hand (no grpc_tools): each method is the bare path `/SpiffeWorkloadAPI/<Method>`
with the messages' own serializers. Prints one JSON line; bytes are base64 (standard alphabet).
"""

import base64
import json
import sys

import grpc
from google.protobuf import json_format

HEADER = (("workload.spiffe.io", "true"),)
TIMEOUT_S = 10


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class WorkloadStub:
    """The five mandatory Workload API methods, bound to one channel."""

    def __init__(self, channel: grpc.Channel, pb) -> None:
        def stream(name, req, res):
            return channel.unary_stream(
                f"/SpiffeWorkloadAPI/{name}",
                request_serializer=req.SerializeToString,
                response_deserializer=res.FromString,
            )

        def unary(name, req, res):
            return channel.unary_unary(
                f"/SpiffeWorkloadAPI/{name}",
                request_serializer=req.SerializeToString,
                response_deserializer=res.FromString,
            )

        self.FetchX509SVID = stream("FetchX509SVID", pb.X509SVIDRequest, pb.X509SVIDResponse)
        self.FetchX509Bundles = stream("FetchX509Bundles", pb.X509BundlesRequest, pb.X509BundlesResponse)
        self.FetchJWTBundles = stream("FetchJWTBundles", pb.JWTBundlesRequest, pb.JWTBundlesResponse)
        self.FetchJWTSVID = unary("FetchJWTSVID", pb.JWTSVIDRequest, pb.JWTSVIDResponse)
        self.ValidateJWTSVID = unary(
            "ValidateJWTSVID", pb.ValidateJWTSVIDRequest, pb.ValidateJWTSVIDResponse
        )


def first_message(call):
    """The first message of a server stream, which is then cancelled (as a one-shot client does)."""
    try:
        return next(call)
    finally:
        call.cancel()


def status_of(action) -> str:
    """The gRPC status name `action` fails with, or OK."""
    try:
        action()
        return "OK"
    except grpc.RpcError as err:
        return err.code().name


def fetch_x509(stub: WorkloadStub, pb) -> dict:
    res = first_message(stub.FetchX509SVID(pb.X509SVIDRequest(), metadata=HEADER, timeout=TIMEOUT_S))
    return {
        "svids": [
            {
                "spiffe_id": s.spiffe_id,
                "x509_svid": b64(s.x509_svid),
                "x509_svid_key": b64(s.x509_svid_key),
                "bundle": b64(s.bundle),
                "hint": s.hint,
            }
            for s in res.svids
        ],
        "federated_bundles": sorted(res.federated_bundles.keys()),
    }


def fetch_bundles(stub: WorkloadStub, pb) -> dict:
    x509 = first_message(
        stub.FetchX509Bundles(pb.X509BundlesRequest(), metadata=HEADER, timeout=TIMEOUT_S)
    )
    jwt = first_message(stub.FetchJWTBundles(pb.JWTBundlesRequest(), metadata=HEADER, timeout=TIMEOUT_S))
    return {
        "x509_bundles": {td: b64(der) for td, der in x509.bundles.items()},
        "jwt_bundles": {td: json.loads(jwks.decode("utf-8")) for td, jwks in jwt.bundles.items()},
    }


def fetch_and_validate_jwt(stub: WorkloadStub, pb, audiences: list) -> dict:
    res = stub.FetchJWTSVID(pb.JWTSVIDRequest(audience=audiences), metadata=HEADER, timeout=TIMEOUT_S)
    svids = [{"spiffe_id": s.spiffe_id, "svid": s.svid, "hint": s.hint} for s in res.svids]
    token = res.svids[0].svid
    valid = stub.ValidateJWTSVID(
        pb.ValidateJWTSVIDRequest(audience=audiences[1], svid=token), metadata=HEADER, timeout=TIMEOUT_S
    )
    wrong_audience = status_of(
        lambda: stub.ValidateJWTSVID(
            pb.ValidateJWTSVIDRequest(audience="not-" + audiences[0], svid=token),
            metadata=HEADER,
            timeout=TIMEOUT_S,
        )
    )
    return {
        "jwt_svids": svids,
        "validated": {"spiffe_id": valid.spiffe_id, "claims": json_format.MessageToDict(valid.claims)},
        "validate_wrong_audience": wrong_audience,
    }


def without_header(stub: WorkloadStub, pb, audiences: list) -> dict:
    """Every call without the security header must fail with INVALID_ARGUMENT (spec §2.4)."""
    return {
        "FetchJWTSVID": status_of(
            lambda: stub.FetchJWTSVID(pb.JWTSVIDRequest(audience=audiences), timeout=TIMEOUT_S)
        ),
        "FetchX509SVID": status_of(
            lambda: first_message(stub.FetchX509SVID(pb.X509SVIDRequest(), timeout=TIMEOUT_S))
        ),
        "ValidateJWTSVID": status_of(
            lambda: stub.ValidateJWTSVID(
                pb.ValidateJWTSVIDRequest(audience=audiences[0], svid="x.y.z"), timeout=TIMEOUT_S
            )
        ),
    }


def main() -> None:
    gen_dir, socket_path, *audiences = sys.argv[1:]
    sys.path.insert(0, gen_dir)
    from spiffe import workload_pb2 as pb  # generated at test time, never committed

    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = WorkloadStub(channel, pb)
        out = {
            "grpc_version": grpc.__version__,
            "x509": fetch_x509(stub, pb),
            **fetch_bundles(stub, pb),
            **fetch_and_validate_jwt(stub, pb, audiences),
            "without_header": without_header(stub, pb, audiences),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
