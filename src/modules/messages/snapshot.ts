import type { File, Message, Prisma, User } from '../../generated/prisma/client.ts';
import type { FileSnapshot, MessageSnapshot, UserSnapshot } from '../../lib/events.ts';

/** What every message read loads alongside it, so fields resolve without further queries. */
export const messageInclude = {
  sender: true,
  attachments: { where: { deletedAt: null }, orderBy: { id: 'asc' } },
  replyTo: { include: { sender: true } },
} satisfies Prisma.MessageInclude;

export type MessageRecord = Prisma.MessageGetPayload<{ include: typeof messageInclude }>;

/** A nullable date as events carry it. */
export const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function userSnapshot(user: User): UserSnapshot {
  return {
    id: user.id,
    username: user.username,
    displayName: user.displayName,
    avatarUrl: user.avatarUrl,
    bio: user.bio,
    website: user.website,
    isPrivate: user.isPrivate,
    status: user.status,
    lastSeenAt: iso(user.lastSeenAt),
    createdAt: user.createdAt.toISOString(),
  };
}

export function fileSnapshot(file: File): FileSnapshot {
  return {
    id: file.id,
    name: file.name,
    size: file.size,
    mimeType: file.mimeType,
    width: file.width,
    height: file.height,
    uploaderId: file.uploaderId,
    conversationId: file.conversationId,
    messageId: file.messageId,
    externalUrl: file.externalUrl,
    createdAt: file.createdAt.toISOString(),
  };
}

function baseSnapshot(m: Message & { sender: User | null }) {
  return {
    id: m.id,
    conversationId: m.conversationId,
    seq: m.seq,
    senderId: m.senderId,
    kind: m.kind,
    content: m.deletedAt ? '' : m.content,
    replyToId: m.replyToId,
    clientId: m.clientId,
    editedAt: iso(m.editedAt),
    deletedAt: iso(m.deletedAt),
    createdAt: m.createdAt.toISOString(),
    sender: m.sender ? userSnapshot(m.sender) : null,
  };
}

export function messageSnapshot(m: MessageRecord): MessageSnapshot {
  // New keys first, the spread last: V8 (Node 20) adds keys to a freshly spread copy slowly,
  // about 14 µs here against 1 µs this way round, once per message sent.
  return {
    attachments: m.attachments.map(fileSnapshot),
    replyTo: m.replyTo ? baseSnapshot(m.replyTo) : null,
    ...baseSnapshot(m),
  };
}
