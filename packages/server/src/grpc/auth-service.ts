import type {
  AuthenticateRequest,
  AuthenticateResponse,
  AuthUserAddRequest,
  AuthUserAddResponse,
  AuthUserChangePasswordRequest,
  AuthUserChangePasswordResponse,
  InternalRaftRequest,
  ResponseHeader,
} from "@etcd-ts/api";
import { RpcError } from "@etcd-ts/api";
import { peerAddress, type AuthInfo } from "@etcd-ts/auth";
import type { EtcdServer } from "../etcd-server.js";
import { toRpcError } from "../errors.js";

/**
 * etcd's Auth service. Everything goes through the log; what involves a clear password happens here
 * first, on the member that received the call, so the log and the store only ever see bcrypt hashes:
 * UserAdd and UserChangePassword hash before proposing, Authenticate checks the password before
 * proposing a token prefix.
 */
export class AuthService {
  constructor(private readonly etcd: EtcdServer) {}

  /**
   * Proposes an auth management request (checked and applied on every member in log order); answers
   * with what the applier returns for it, `Res`.
   */
  propose<Res extends { header?: ResponseHeader }>(request: InternalRaftRequest["request"], caller: AuthInfo | undefined): Promise<Res> {
    return this.etcd.proposeRequest<Res>(request, caller);
  }

  async userAdd(request: AuthUserAddRequest, caller: AuthInfo | undefined): Promise<AuthUserAddResponse> {
    if (request.name === "") throw RpcError.of("userEmpty");
    // Checked again when the entry applies; here so that only root can make this member run bcrypt.
    this.etcd.checkAdmin(caller);
    const noPassword = request.options?.noPassword ?? false;
    const password = noPassword ? "" : await this.hash(request.password);
    return this.propose<AuthUserAddResponse>({ case: "authUserAdd", value: { ...request, password } }, caller);
  }

  async userChangePassword(request: AuthUserChangePasswordRequest, caller: AuthInfo | undefined): Promise<AuthUserChangePasswordResponse> {
    this.etcd.checkAdmin(caller);
    const password = await this.hash(request.password);
    return this.propose<AuthUserChangePasswordResponse>({ case: "authUserChangePassword", value: { ...request, password } }, caller);
  }

  /**
   * Checks the password here, then proposes the token's random prefix; the token is assigned when the
   * entry applies. If the user or password changed meanwhile (the auth revision moved), start over, as
   * etcd's Authenticate loop does. `peer` is the client's address (grpc-js' `getPeer()`), for the
   * failed-login limits.
   */
  async authenticate(request: AuthenticateRequest, peer?: string): Promise<AuthenticateResponse> {
    const address = peerAddress(peer);
    for (let attempt = 0; ; attempt++) {
      const checkedAt = await this.guard(() => this.etcd.auth.checkPassword(request.name, request.password, address));
      const prefix = this.etcd.auth.genTokenPrefix();
      const response = await this.etcd.proposeRequest<AuthenticateResponse>({
        case: "authenticate",
        value: { $typeName: "etcdserverpb.InternalAuthenticateRequest", name: request.name, password: "", simpleToken: prefix },
      });
      if (this.etcd.auth.revision === checkedAt || attempt >= 3) return response;
    }
  }

  private hash(password: string): Promise<string> {
    return this.guard(() => this.etcd.auth.preparePassword(password));
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toRpcError(error) ?? error;
    }
  }
}
