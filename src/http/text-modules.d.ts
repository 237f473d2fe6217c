// The bundles load agent/*.sh and agent/*.ps1 with esbuild's text loader (scripts/bundling.ts).
declare module "*.sh" {
  const text: string;
  export default text;
}
declare module "*.ps1" {
  const text: string;
  export default text;
}
