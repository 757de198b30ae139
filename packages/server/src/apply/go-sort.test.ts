import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RangeRequest_SortOrder, RangeRequest_SortTarget } from "@etcd-ts/api";
import { goSort } from "./go-sort.js";
import { Harness, b, range, s } from "../testing/kv-applier-harness.js";

describe("goSort (Go 1.19 sort.Sort)", () => {
  it("sorts", () => {
    for (const n of [0, 1, 5, 12, 13, 50, 51, 200, 1000]) {
      const data = Array.from({ length: n }, (_, i) => (i * 7919) % 101);
      goSort(data, (x, y) => x < y);
      assert.deepEqual(
        data,
        [...data].sort((x, y) => x - y),
      );
    }
    const descending = Array.from({ length: 300 }, (_, i) => 300 - i);
    goSort(descending, (x, y) => x < y);
    assert.deepEqual(
      descending,
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
  });
});

// etcd 3.4.23's answers for 200 keys s000..s199 where key i was put (i*7)%5+1 times with values
// v((i*13+j)%4), j = 0, 1, …: many ties, so only Go's exact algorithm gives this order.
const ETCD_VERSION_ASCEND =
  "s040 s135 s005 s190 s185 s010 s085 s075 s090 s095 s070 s140 s180 s100 s000 s015 s175 s065 s105 s170 s020 s060 s165 s110 s115 s025 s160 s055 s120 s155 s030 s050 s150 s125 s130 s035 s145 s045 s080 s195 s068 s023 s038 s043 s133 s143 s148 s128 s048 s033 s153 s123 s028 s053 s118 s158 s163 s113 s058 s138 s168 s108 s018 s063 s103 s173 s178 s013 s183 s098 s008 s188 s093 s073 s193 s003 s088 s198 s078 s083 s101 s121 s001 s196 s191 s006 s086 s186 s076 s011 s181 s091 s176 s016 s171 s071 s096 s021 s166 s161 s026 s066 s156 s031 s151 s146 s106 s036 s061 s141 s081 s111 s041 s136 s131 s056 s116 s046 s126 s051 s139 s179 s199 s119 s124 s049 s054 s079 s194 s129 s004 s114 s084 s044 s134 s189 s009 s184 s089 s059 s039 s109 s074 s014 s144 s174 s094 s019 s034 s149 s169 s104 s069 s064 s154 s029 s164 s024 s099 s159 s012 s047 s162 s157 s102 s022 s037 s167 s097 s032 s147 s062 s172 s017 s107 s072 s092 s067 s152 s027 s177 s142 s182 s112 s137 s057 s087 s187 s007 s042 s077 s132 s192 s117 s052 s002 s127 s197 s082 s122";
const ETCD_VALUE_DESCEND =
  "s075 s141 s098 s095 s004 s198 s104 s107 s195 s115 s087 s118 s187 s084 s184 s015 s081 s121 s018 s078 s181 s021 s101 s124 s024 s178 s127 s027 s175 s155 s135 s067 s167 s138 s164 s035 s064 s061 s038 s058 s161 s041 s055 s144 s044 s158 s147 s047 s001 s007 s042 s159 s070 s053 s002 s179 s056 s142 s039 s059 s050 s162 s062 s139 s036 s076 s136 s073 s030 s133 s173 s130 s176 s170 s156 s150 s033 s122 s019 s079 s182 s016 s082 s119 s013 s190 s116 s010 s193 s113 s090 s110 s153 s093 s196 s199 s096 s102 s022 s099 s051 s151 s097 s005 s094 s105 s197 s008 s108 s194 s091 s111 s191 s011 s114 s088 s188 s117 s085 s185 s014 s017 s077 s025 s074 s125 s177 s028 s128 s174 s071 s131 s171 s031 s134 s068 s168 s137 s065 s165 s034 s037 s057 s045 s054 s145 s157 s048 s148 s154 s149 s072 s152 s049 s100 s052 s046 s146 s143 s043 s160 s040 s060 s163 s140 s063 s166 s032 s066 s169 s069 s132 s172 s029 s129 s000 s026 s126 s123 s023 s180 s020 s080 s183 s120 s083 s186 s012 s086 s189 s089 s112 s192 s009 s109 s092 s006 s106 s103 s003";

describe("Range sorting matches etcd on ties", () => {
  it("gives etcd's order for sort by version and by value", () => {
    const h = new Harness();
    for (let i = 0; i < 200; i++) {
      const key = `s${String(i).padStart(3, "0")}`;
      for (let j = 0; j < ((i * 7) % 5) + 1; j++) h.put(key, `v${(i * 13 + j) % 4}`);
    }
    const sorted = (sortTarget: RangeRequest_SortTarget, sortOrder: RangeRequest_SortOrder) =>
      h.applier
        .range(range({ key: b("s"), rangeEnd: b("t"), sortTarget, sortOrder, keysOnly: true }))
        .kvs.map((kv) => s(kv.key))
        .join(" ");
    assert.equal(sorted(RangeRequest_SortTarget.VERSION, RangeRequest_SortOrder.ASCEND), ETCD_VERSION_ASCEND);
    assert.equal(sorted(RangeRequest_SortTarget.VALUE, RangeRequest_SortOrder.DESCEND), ETCD_VALUE_DESCEND);
  });
});
