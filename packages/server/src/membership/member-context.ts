import type { Member } from "./membership.js";

/** What a conf change carries in its context: the member it adds or updates, and the proposer's request ID. */
export interface MemberContext {
  readonly member: Member;
  readonly requestId: bigint;
  /** An AddNode that promotes an existing learner (etcd's `ConfigChangeContext.IsPromote`). */
  readonly isPromote?: boolean;
}

export function encodeMemberContext(context: MemberContext): Uint8Array {
  const m = context.member;
  return new TextEncoder().encode(
    JSON.stringify({
      id: m.id.toString(16),
      name: m.name,
      peerURLs: m.peerUrls,
      clientURLs: m.clientUrls,
      isLearner: m.isLearner,
      requestId: context.requestId.toString(16),
      ...(context.isPromote === true ? { isPromote: true } : {}),
    }),
  );
}

export function decodeMemberContext(bytes: Uint8Array): MemberContext {
  const json = JSON.parse(new TextDecoder().decode(bytes)) as {
    id: string;
    name: string;
    peerURLs: string[];
    clientURLs: string[];
    isLearner: boolean;
    requestId: string;
    isPromote?: boolean;
  };
  return {
    member: {
      id: BigInt(`0x${json.id}`),
      name: json.name,
      peerUrls: json.peerURLs,
      clientUrls: json.clientURLs,
      isLearner: json.isLearner,
    },
    requestId: BigInt(`0x${json.requestId}`),
    isPromote: json.isPromote === true,
  };
}
