import { topics, type EventBus } from '../lib/events.ts';

/** A connection in a room: how a room's event reaches it. */
export interface RoomMember {
  deliver(event: string, payload: unknown): void;
}

/**
 * The rooms of one dialect's raw WebSocket connections, spanning instances through the bus (in
 * Redis mode a Redis channel per room), as Socket.IO's Redis adapter does for its rooms. An
 * instance listens to a room's topic only while one of its connections is in it.
 */
export class BusRooms {
  private readonly rooms = new Map<string, { members: Set<RoomMember>; listening: Promise<() => void> }>();

  constructor(
    private readonly bus: EventBus,
    private readonly dialect: string,
  ) {}

  /** Resolves once the room's events reach `member`, so a broadcast sent afterwards does. */
  async join(room: string, member: RoomMember): Promise<void> {
    let entry = this.rooms.get(room);
    if (!entry) {
      const members = new Set<RoomMember>();
      const listening = this.bus.listen(topics.room(this.dialect, room), (event) => {
        if (event.type !== 'roomEvent') return;
        for (const one of members) one.deliver(event.event, event.payload);
      });
      entry = { members, listening };
      this.rooms.set(room, entry);
      // A room whose topic could not be listened to is forgotten, so a later join tries again.
      listening.catch(() => {
        if (this.rooms.get(room) === entry) this.rooms.delete(room);
      });
    }
    entry.members.add(member);
    await entry.listening;
  }

  async leave(room: string, member: RoomMember): Promise<void> {
    const entry = this.rooms.get(room);
    if (!entry || !entry.members.delete(member) || entry.members.size > 0) return;
    this.rooms.delete(room);
    (await entry.listening.catch(() => () => {}))();
  }

  broadcast(room: string, event: string, payload: unknown): Promise<void> {
    return this.bus.publish(topics.room(this.dialect, room), { type: 'roomEvent', event, payload });
  }
}
