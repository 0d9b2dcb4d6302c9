-- DropIndex
DROP INDEX "Participant_userId_lastActivityAt_idx";

-- AlterTable (hand-edited: existing rows keep their activity time and get their sequence)
ALTER TABLE "Conversation" ADD COLUMN     "lastActivityAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN     "lastSeq" INTEGER NOT NULL DEFAULT 0;
UPDATE "Conversation" SET "lastActivityAt" = COALESCE("lastMessageAt", "createdAt");
ALTER TABLE "Conversation" DROP COLUMN "lastMessageAt";

-- AlterTable
ALTER TABLE "Participant" DROP COLUMN "lastActivityAt",
ADD COLUMN     "lastDeliveredMessageId" INTEGER;

-- AlterTable (hand-edited: number existing messages per conversation in id order)
ALTER TABLE "Message" ADD COLUMN     "seq" INTEGER;
UPDATE "Message" m SET "seq" = n.seq
  FROM (SELECT id, row_number() OVER (PARTITION BY "conversationId" ORDER BY id)::int AS seq FROM "Message") n
  WHERE m.id = n.id;
UPDATE "Conversation" c SET "lastSeq" = COALESCE((SELECT max("seq") FROM "Message" m WHERE m."conversationId" = c.id), 0);
ALTER TABLE "Message" ALTER COLUMN "seq" SET NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "Conversation_lastMessageId_key" ON "Conversation"("lastMessageId");

-- CreateIndex
CREATE INDEX "Conversation_lastActivityAt_id_idx" ON "Conversation"("lastActivityAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "Participant_userId_leftAt_idx" ON "Participant"("userId", "leftAt");

-- CreateIndex
CREATE UNIQUE INDEX "Message_conversationId_seq_key" ON "Message"("conversationId", "seq");

-- AddForeignKey
ALTER TABLE "Conversation" ADD CONSTRAINT "Conversation_lastMessageId_fkey" FOREIGN KEY ("lastMessageId") REFERENCES "Message"("id") ON DELETE SET NULL ON UPDATE CASCADE;

