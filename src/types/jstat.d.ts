// The one part of jStat distill uses (the package ships no types).
declare module "jstat" {
  export const jStat: { studentt: { cdf(x: number, degreesOfFreedom: number): number } };
  export default { jStat };
}
