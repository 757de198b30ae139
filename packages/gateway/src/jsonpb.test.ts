import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  RangeRequestSchema,
  RangeResponseSchema,
  TxnRequestSchema,
  TxnResponseSchema,
  WatchCreateRequest_FilterType,
  WatchRequestSchema,
  StatusResponseSchema,
  AuthRoleGetResponseSchema,
  LeaseGrantRequestSchema,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  Compare_CompareTarget,
  Compare_CompareResult,
  type RangeRequest,
  type TxnRequest,
  type WatchRequest,
  type LeaseGrantRequest,
} from "@etcd-ts/api";
import { Permission_Type } from "@etcd-ts/api";
import { isGatewayError } from "./errors.js";
import { decodeFirstMessage, encodeMessage, goEnumTypeName } from "./jsonpb.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Request bodies and the error etcd 3.4.23's gateway answered for each (`undefined`: accepted), captured
 * from the real etcd with curl. The texts come from Go's encoding/json scanner and type errors, Go's base64
 * decoder and golang/protobuf 1.3.5's jsonpb.
 */
const RANGE_BODIES: ReadonlyArray<readonly [string, string | undefined]> = [
  ['{"key":"YQ==","limit":01}', "invalid character '1' after object key:value pair"],
  ['{"key":"YQ==","limit":-}', "invalid character '}' in numeric literal"],
  ['{"key":"YQ==","limit":1.}', "invalid character '}' after decimal point in numeric literal"],
  ['{"key":"YQ==","limit":1e}', "invalid character '}' in exponent of numeric literal"],
  ['{"key":"YQ==","limit":1e+}', "invalid character '}' in exponent of numeric literal"],
  ['{"key":"YQ==","limit":1e3}', "json: cannot unmarshal number 1e3 into Go value of type int64"],
  ['{"key":"YQ==","limit":-0}', undefined],
  ['{"key":"YQ==","limit":9223372036854775807}', undefined],
  ['{"key":"YQ==","limit":9223372036854775808}', "json: cannot unmarshal number 9223372036854775808 into Go value of type int64"],
  ['{"key":"YQ==","limit":{}}', "json: cannot unmarshal object into Go value of type int64"],
  ['{"key":"YQ==","limit":[]}', "json: cannot unmarshal array into Go value of type int64"],
  ['{"key":"YQ==","limit":"1 2"}', "invalid character '2' after top-level value"],
  ['{"key":"YQ==","limit":"\\u0031"}', "invalid character '\\\\' looking for beginning of value"],
  ['{"key":"YQ==","limit":" 3 "}', undefined],
  ['{"key":"YQ==","limit":"null"}', undefined],
  ['{"key":"YQ==","limit":"true"}', "json: cannot unmarshal bool into Go value of type int64"],
  ['{"key":"YQ==" "limit":1}', "invalid character '\"' after object key:value pair"],
  ['{"key":"YQ==",]', "invalid character ']' looking for beginning of object key string"],
  ['{"key" 1}', "invalid character '1' after object key"],
  ['{"key":"YQ==\\x"}', "invalid character 'x' in string escape code"],
  ['{"key":"a\tb"}', "invalid character '\\t' in string literal"],
  ['{"key":"YQ=="}]', undefined],
  ["[1,2", "unexpected EOF"],
  ['{"key":nul}', "invalid character '}' in literal null (expecting 'l')"],
  ['{"key":fals}', "invalid character '}' in literal false (expecting 'e')"],
  ['{"key":true}', "json: cannot unmarshal bool into Go value of type []uint8"],
  ['{"key":{}}', "json: cannot unmarshal object into Go value of type []uint8"],
  ['{"key":"Y Q=="}', "illegal base64 data at input byte 1"],
  ['{"key":"YQ==YQ=="}', "illegal base64 data at input byte 4"],
  ['{"key":"YWJj\\nZA=="}', undefined],
  ['{"key":"YWJjZA="}', "illegal base64 data at input byte 7"],
  ['{"key":"YWJjZA"}', "illegal base64 data at input byte 4"],
  ['{"key":"YWJjZ==="}', "illegal base64 data at input byte 5"],
  ['{"key":"=YWJj"}', "illegal base64 data at input byte 0"],
  ['{"key":"Y===" }', "illegal base64 data at input byte 1"],
  ['{"key":[1,"a"]}', "json: cannot unmarshal string into Go value of type uint8"],
  ['{"key":[1.5]}', "json: cannot unmarshal number 1.5 into Go value of type uint8"],
  ['{"key":[-1]}', "json: cannot unmarshal number -1 into Go value of type uint8"],
  ['{"key":[null,97]}', undefined],
  ['{"key":"YQ==","sort_order":"descend"}', 'unknown value "descend" for enum etcdserverpb.RangeRequest_SortOrder'],
  ['{"key":"YQ==","sort_order":"DESC\\u0045ND"}', 'unknown value "DESC\\\\u0045ND" for enum etcdserverpb.RangeRequest_SortOrder'],
  ['{"key":"YQ==","sort_order":"a\\"b"}', 'unknown value "a\\\\\\"b" for enum etcdserverpb.RangeRequest_SortOrder'],
  ['{"key":"YQ==","sort_order":"\u00e9"}', 'unknown value "\u00e9" for enum etcdserverpb.RangeRequest_SortOrder'],
  [
    '{"key":"YQ==","sort_order":2147483648}',
    "json: cannot unmarshal number 2147483648 into Go value of type etcdserverpb.RangeRequest_SortOrder",
  ],
  ['{"key":"YQ==","sort_order":-5}', undefined],
  ['{"key":"YQ==","sort_order":true}', "json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder"],
  ['{"key":"YQ==","sort_order":null}', undefined],
  ['{"key":"YQ==","serializable":1}', "json: cannot unmarshal number into Go value of type bool"],
  ['{"key":"YQ==","serializable":{}}', "json: cannot unmarshal object into Go value of type bool"],
  ['{"key":"YQ==","serializable":[]}', "json: cannot unmarshal array into Go value of type bool"],
  ['{"key":"YQ==","serializable":false}', undefined],
  ['{"key":"YQ==","limit":-1}', undefined],
  ['{"key":"YQ==","range_end":"AA==","limit":"0x10"}', "invalid character 'x' after top-level value"],
  ["1", "json: cannot unmarshal number into Go value of type map[string]json.RawMessage"],
  ["true", "json: cannot unmarshal bool into Go value of type map[string]json.RawMessage"],
  ['"str"', "json: cannot unmarshal string into Go value of type map[string]json.RawMessage"],
  ['{"key":"YQ=="}{"key":"Yg=="}', undefined],
  ['{"key":"YQ==",   "keys_only"  :  true  }', undefined],
  ['{"ke\\u0079":"YQ=="}', undefined],
  ['{"key":"YQ==","key":"Yg=="}', undefined],
  ['{"key":"Yg==","key":null}', undefined],
  ["{not json", "invalid character 'n' looking for beginning of object key string"],
  ['{"key":"!!notbase64"}', "illegal base64 data at input byte 0"],
  ['{"key":"YQ==","limit":1.5}', "json: cannot unmarshal number 1.5 into Go value of type int64"],
  ['{"key":"YQ==","sort_order":"NOPE"}', 'unknown value "NOPE" for enum etcdserverpb.RangeRequest_SortOrder'],
  ['{"key":"YQ==","keys_only":"true"}', "json: cannot unmarshal string into Go value of type bool"],
  ["[]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"],
  ["", undefined],
  ["null", undefined],
];

test("request bodies are accepted or refused with etcd's exact error text", () => {
  for (const [body, expected] of RANGE_BODIES) {
    let actual: string | undefined;
    try {
      decodeFirstMessage(RangeRequestSchema, utf8(body));
    } catch (error) {
      assert.ok(isGatewayError(error, "JsonPb"), `${body}: ${String(error)}`);
      actual = error.message;
    }
    assert.equal(actual, expected, body);
  }
});

test("both field names are accepted, the lowerCamel one wins, and the last duplicate key wins", () => {
  const request = decodeFirstMessage(
    RangeRequestSchema,
    utf8(
      '{"key":"YQ==","key":"Yg==","rangeEnd":"Yw==","range_end":"ZA==","sort_order":"DESCEND","sortTarget":4,"limit":"7","revision":-3}',
    ),
  ) as unknown as RangeRequest;
  assert.deepEqual([...request.key], [0x62]);
  assert.deepEqual([...request.rangeEnd], [0x63]);
  assert.equal(request.sortOrder, RangeRequest_SortOrder.DESCEND);
  assert.equal(request.sortTarget, RangeRequest_SortTarget.VALUE);
  assert.equal(request.limit, 7n);
  assert.equal(request.revision, -3n);
});

test("ID and TTL keep their upper-case proto names", () => {
  const request = decodeFirstMessage(LeaseGrantRequestSchema, utf8('{"TTL":30,"ID":"4242424242"}')) as unknown as LeaseGrantRequest;
  assert.equal(request.TTL, 30n);
  assert.equal(request.ID, 4242424242n);
});

test("oneofs: txn ops and compare targets, a null message member selects nothing, a null scalar member its zero", () => {
  const txn = decodeFirstMessage(
    TxnRequestSchema,
    utf8(
      '{"compare":[{"key":"YQ==","result":"LESS","target":"MOD","mod_revision":"5"},{"key":"YQ==","target":"VERSION","version":null}],' +
        '"success":[{"request_put":{"key":"YQ==","value":"dg=="}},{"requestRange":null},{"request_delete_range":{}}]}',
    ),
  ) as unknown as TxnRequest;
  assert.equal(txn.compare[0]!.result, Compare_CompareResult.LESS);
  assert.equal(txn.compare[0]!.target, Compare_CompareTarget.MOD);
  assert.deepEqual(txn.compare[0]!.targetUnion, { case: "modRevision", value: 5n });
  assert.deepEqual(txn.compare[1]!.targetUnion, { case: "version", value: 0n });
  assert.equal(txn.success[0]!.request.case, "requestPut");
  assert.equal(txn.success[1]!.request.case, undefined);
  assert.equal(txn.success[2]!.request.case, "requestDeleteRange");
});

test("repeated enums by name or number", () => {
  const watch = decodeFirstMessage(
    WatchRequestSchema,
    utf8('{"create_request":{"key":"YQ==","filters":["NODELETE",0]}}'),
  ) as unknown as WatchRequest;
  assert.equal(watch.requestUnion.case, "createRequest");
  assert.deepEqual(watch.requestUnion.value?.filters, [WatchCreateRequest_FilterType.NODELETE, WatchCreateRequest_FilterType.NOPUT]);
});

test("Go type names of etcd's enums, as gogo generates them", () => {
  assert.equal(
    goEnumTypeName(RangeRequestSchema.fields.find((f) => f.name === "sort_order")!.enum!),
    "etcdserverpb.RangeRequest_SortOrder",
  );
  const permType = AuthRoleGetResponseSchema.fields.find((f) => f.name === "perm")!.message!.fields.find((f) => f.name === "permType")!;
  assert.equal(goEnumTypeName(permType.enum!), "authpb.Permission_Type");
});

test("responses: proto names in declaration order, zero values left out, int64 quoted, bytes base64", () => {
  const response = create(RangeResponseSchema, {
    header: { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 0n },
    kvs: [{ key: utf8("a"), createRevision: 2n, modRevision: 3n, version: 2n, value: utf8("<v>"), lease: 0n }],
    count: 1n,
    more: false,
  });
  assert.equal(
    encodeMessage(RangeResponseSchema, response),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"3"},"kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"3","version":"2","value":"PHY+"}],"count":"1"}',
  );
  assert.equal(encodeMessage(RangeResponseSchema, create(RangeResponseSchema)), "{}");
});

test("responses: camelCase proto names kept, strings escaped as Go's json.Marshal does", () => {
  const status = create(StatusResponseSchema, { version: '<3.4&\u2028>\u0001"\\\n', dbSize: 24576n, raftIndex: 5n, errors: ["a", "b"] });
  assert.equal(
    encodeMessage(StatusResponseSchema, status),
    '{"version":"\\u003c3.4\\u0026\\u2028\\u003e\\u0001\\"\\\\\\n","dbSize":"24576","raftIndex":"5","errors":["a","b"]}',
  );
});

test("responses: a set oneof member is written even when empty; enums by name, unknown ones as numbers", () => {
  const txn = create(TxnResponseSchema, {
    succeeded: true,
    responses: [{ response: { case: "responseRange", value: {} } }, { response: { case: "responsePut", value: { header: {} } } }],
  });
  assert.equal(
    encodeMessage(TxnResponseSchema, txn),
    '{"succeeded":true,"responses":[{"response_range":{}},{"response_put":{"header":{}}}]}',
  );
  const role = create(AuthRoleGetResponseSchema, {
    perm: [
      { permType: Permission_Type.READ, key: utf8("k") },
      { permType: Permission_Type.READWRITE, key: utf8("k"), rangeEnd: utf8("l") },
      // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a value outside the enum, on purpose
      { permType: 7 as Permission_Type, key: utf8("k") },
    ],
  });
  assert.equal(
    encodeMessage(AuthRoleGetResponseSchema, role),
    '{"perm":[{"key":"aw=="},{"permType":"READWRITE","key":"aw==","range_end":"bA=="},{"permType":7,"key":"aw=="}]}',
  );
});

test("deep nesting: an unknown field nested 6000 deep is ignored, a txn nested 3000 deep decodes, depth 10001 is Go's error", () => {
  const range = decodeFirstMessage(RangeRequestSchema, utf8(`{"key":"YQ==","zz":${"[".repeat(6000)}${"]".repeat(6000)}}`)) as RangeRequest;
  assert.deepEqual(range.key, utf8("a"));
  const n = 3000;
  const body = `${'{"success":[{"request_txn":'.repeat(n)}{"success":[{"request_range":{"key":"YQ=="}}]}${"}]}".repeat(n)}`;
  let txn = decodeFirstMessage(TxnRequestSchema, utf8(body)) as TxnRequest;
  let depth = 0;
  while (txn.success[0]?.request.case === "requestTxn") {
    txn = txn.success[0].request.value;
    depth++;
  }
  assert.equal(depth, n);
  assert.equal(txn.success[0]?.request.case, "requestRange");
  let message: string | undefined;
  try {
    decodeFirstMessage(RangeRequestSchema, utf8(`{"key":"YQ==","zz":${"[".repeat(10000)}${"]".repeat(10000)}}`));
  } catch (error) {
    assert.ok(isGatewayError(error, "JsonPb"));
    message = error.message;
  }
  assert.equal(message, "invalid character '[' exceeded max depth");
  // The first error in depth-first order is reported, as jsonpb's recursion finds it.
  try {
    decodeFirstMessage(
      TxnRequestSchema,
      utf8('{"success":[{"request_txn":{"success":[{"request_put":{"lease":1.5}}]}}],"compare":[{"result":"NOPE"}]}'),
    );
    assert.fail("accepted");
  } catch (error) {
    assert.ok(isGatewayError(error, "JsonPb"));
    assert.equal(error.message, 'unknown value "NOPE" for enum etcdserverpb.Compare_CompareResult');
  }
});
