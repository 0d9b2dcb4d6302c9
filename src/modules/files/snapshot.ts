import type { File } from '../../generated/prisma/client.ts';
import type { FileSnapshot } from '../../lib/events.ts';

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
