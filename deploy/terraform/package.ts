import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateRawSync } from "node:zlib";
import { BROKER_ENTRY, JANITOR_ENTRY, inlineCode } from "../../infra/scripts/package";

/**
 * The functions' code for the Terraform module: dist/terraform/broker.zip and janitor.zip, each
 * one `index.js` (handler `index.handler`) — the bundles `npm run package` inlines in the
 * CloudFormation release (infra/scripts/package.ts), so both paths run the same code, with the
 * AWS SDK clients of the Lambda runtime. Run from the repository root:
 *
 *   npx tsx deploy/terraform/package.ts
 */

/**
 * A zip archive holding one file, deflated (APPNOTE.TXT, the .ZIP file format specification,
 * sections 4.3.7, 4.3.12 and 4.3.16). The timestamp is fixed so the same code gives the same
 * bytes, and Terraform's source_code_hash changes only when the code does.
 */
export function zipOneFile(name: string, content: string | Buffer): Buffer {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
  const deflated = deflateRawSync(data, { level: 9 });
  const fileName = Buffer.from(name, "utf8");
  const crc = crc32(data);
  const dosTime = 0; // 00:00:00
  const dosDate = ((2020 - 1980) << 9) | (1 << 5) | 1; // 2020-01-01
  const common = (b: Buffer, at: number) => {
    b.writeUInt16LE(20, at); // version needed to extract: 2.0 (deflate)
    b.writeUInt16LE(0x0800, at + 2); // flags: the name is UTF-8
    b.writeUInt16LE(8, at + 4); // method: deflate
    b.writeUInt16LE(dosTime, at + 6);
    b.writeUInt16LE(dosDate, at + 8);
    b.writeUInt32LE(crc, at + 10);
    b.writeUInt32LE(deflated.length, at + 14);
    b.writeUInt32LE(data.length, at + 18);
    b.writeUInt16LE(fileName.length, at + 22);
  };
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  common(local, 4);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0 (so the mode below is read)
  common(central, 6);
  central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: a regular file, rw-r--r--
  central.writeUInt32LE(0, 42); // offset of the local header
  const centralSize = central.length + fileName.length;
  const centralOffset = local.length + fileName.length + deflated.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8); // entries on this disk
  end.writeUInt16LE(1, 10); // entries in all
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, fileName, deflated, central, fileName, end]);
}

/** Builds both zips into `target` and returns their paths. */
export async function packageForTerraform(
  target = join("dist", "terraform"),
): Promise<{ broker: string; janitor: string }> {
  mkdirSync(target, { recursive: true });
  const broker = join(target, "broker.zip");
  const janitor = join(target, "janitor.zip");
  writeFileSync(broker, zipOneFile("index.js", await inlineCode(BROKER_ENTRY)));
  writeFileSync(janitor, zipOneFile("index.js", await inlineCode(JANITOR_ENTRY)));
  return { broker, janitor };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { broker, janitor } = await packageForTerraform();
  console.log(`${broker}, ${janitor} (the module's broker_zip and janitor_zip; docs/deploy.md)`);
}
