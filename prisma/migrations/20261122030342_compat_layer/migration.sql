-- AlterTable
ALTER TABLE "User" ADD COLUMN     "emailPublic" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "File" ADD COLUMN     "externalUrl" TEXT,
ALTER COLUMN "storageKey" DROP NOT NULL;

