// Bytes this contributor sent and received, for the commit event and the round's report to
// the coordinator: the mesh counts its own links; this counts the coordinator's side — our
// update envelopes and checkpoint uploads up; its control messages and the updates we fetch
// down. Control messages we send (heartbeats, synced, report: a few dozen bytes each) are not
// counted. Environment-free.

export class Traffic {
  private toCoordinator = 0;
  private fromCoordinator = 0;

  /** An update envelope or a checkpoint went to the coordinator. */
  sent(bytes: number): void {
    this.toCoordinator += bytes;
  }

  /** A control message (its text as it came off the socket) or an update fetched over HTTP. */
  received(bytes: number): void {
    this.fromCoordinator += bytes;
  }

  /** Everything so far, the mesh's links (`stats()` of PeerMesh) included. */
  totals(mesh: { bytesSent: number; bytesReceived: number }): { bytesUp: number; bytesDown: number } {
    return { bytesUp: mesh.bytesSent + this.toCoordinator, bytesDown: mesh.bytesReceived + this.fromCoordinator };
  }
}
